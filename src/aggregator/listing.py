"""The few words every listing says about a story, so the CLI, the digest, the story feeds and the
web pages say them alike: how many outlets and whose text the copies carry ("5 outlets (2 copies of
Global Wire)"), what a variant is ("copy of Global Wire"), the last update, and the figures in brief.

Pure: stories in, strings out. Facts need the variants' text; the rest needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .facts import FactGroup
    from .models import Story, Variant

TIME_FORMAT = "%Y-%m-%d %H:%M"  # the listings' format for a full local time


def copy_of(story: Story, variant: Variant) -> str | None:
    """The outlet whose text a copy republishes: the canonical's (kind and similarity are relative to
    it). None for the canonical and for independent reports."""
    if variant.kind != "copy":
        return None
    canonical = next((v for v in story.variants if v.article_id == story.canonical_article_id), None)
    return canonical.source if canonical is not None else None


def kind_label(story: Story, variant: Variant) -> str:
    """``canonical``, ``report``, or ``copy of <outlet>``."""
    source = copy_of(story, variant)
    return f"copy of {source}" if source is not None else variant.kind


def copy_count(story: Story) -> tuple[int, str | None]:
    """How many outlets other than the canonical's carry a copy of its text, and that outlet."""
    copiers = {v.source for v in story.variants if v.kind == "copy"}
    canonical = next((v for v in story.variants if v.article_id == story.canonical_article_id), None)
    if canonical is None:
        return 0, None
    copiers.discard(canonical.source)
    return len(copiers), canonical.source


def outlets_line(story: Story) -> str:
    """"5 outlets (2 copies of Global Wire)", "3 outlets", "1 outlet"."""
    n = len(story.sources)
    line = f"{n} outlet{'s' if n != 1 else ''}"
    copies, of = copy_count(story)
    if copies:
        line += f" ({copies} cop{'ies' if copies != 1 else 'y'} of {of})"
    return line


def short_time(moment: datetime, tz: tzinfo, beside: datetime) -> str:
    """A local time as ``HH:MM`` when it falls on the same local day as ``beside`` (shown next to it
    in full), else in full."""
    local = moment.astimezone(tz)
    return local.strftime("%H:%M") if local.date() == beside.astimezone(tz).date() else local.strftime(TIME_FORMAT)


def last_update(story: Story, tz: tzinfo) -> str:
    """"last update 14:20": the story's ``updated_at`` (its newest variant), short beside its first report."""
    return f"last update {short_time(story.updated_at, tz, story.first_reported_at)}"


def facts_brief(groups: Sequence[FactGroup]) -> str:
    """The figures of a story in one line: where some category disagrees, ``facts.summary_line`` (every
    value, who gives it, the newest); where all agree, just the figures: "Figures: killed 12 · injured 20".
    Empty when the variants give none."""
    if not groups:
        return ""
    if any(not g.agree for g in groups):
        from .facts import summary_line

        return f"Figures differ: {summary_line(groups)}"
    return "Figures: " + " · ".join(f"{g.what} {g.values[0].label}" for g in groups)
