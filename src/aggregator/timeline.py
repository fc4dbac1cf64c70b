"""What changed in a story, in words: a revised article (its title, its words, its figures), a new
canonical and why, and the timeline's figure lines, read from the variants' texts as each arrived.
Pure: ``Ingest`` writes the first two as ``story_events`` when they happen; ``Library.timeline``
adds the figures to the stored timeline (``store.timeline``) when a story is read."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime, timedelta

from .dedup.canonical import FULL_REPORT_FRACTION
from .models import Revision, Story, TimelineEvent
from .store.interface import LeadFacts

QUOTE_MAX = 80  # characters of a title quoted in a revision's line


def revision_detail(old_title: str, old_text: str, new_title: str, new_text: str) -> str:
    """One sentence for a revised article: "title changed: 'A' → 'B'; text changed (+12/−3 words);
    killed: 12 → 15" (the parts that apply)."""
    parts = []
    if old_title != new_title:
        parts.append(f"title changed: {_quote(old_title)} → {_quote(new_title)}")
    if old_text != new_text:
        added, removed = word_changes(old_text, new_text)
        parts.append(f"text changed (+{added}/−{removed} words)" if added or removed else "text changed (layout only)")
    parts += figure_changes(old_text, new_text)
    return "; ".join(parts) or "content changed"


def word_changes(old: str, new: str) -> tuple[int, int]:
    """How many words the new text adds and removes (a replaced word counts as both)."""
    a, b = old.split(), new.split()
    added = removed = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            removed += i2 - i1
        if op in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def figure_changes(old_text: str, new_text: str) -> list[str]:
    """Per category whose figure differs between two versions of one text: "killed: 12 → 15"
    (``none`` where a version gives no figure)."""
    before, after = _figures(old_text), _figures(new_text)
    return [f"{what}: {before.get(what, 'none')} → {after.get(what, 'none')}"
            for what in dict.fromkeys([*before, *after]) if before.get(what) != after.get(what)]


def _figures(text: str) -> dict[str, str]:
    from .facts import compare

    return {g.what: g.newest.label for g in compare([("", datetime.min, text, None)])}


def canonical_detail(new: LeadFacts, old: LeadFacts | None, longest: int) -> str:
    """Why ``new`` now leads its story instead of ``old`` (``dedup.canonical.choose_canonical``'s
    rule, in words): "#42 (Reuters) now leads: the earliest full report; #40 (AFP) is a teaser
    beside the longest (300 < 600 chars)". ``longest``: the longest text the story now has."""
    head = f"#{new.article_id} ({new.source}) now leads"
    if old is None:
        return f"{head}: the earliest full report"
    full = FULL_REPORT_FRACTION * max(longest, new.text_length, old.text_length)
    if old.text_length < full:
        return (f"{head}: the earliest full report; #{old.article_id} ({old.source}) was a teaser beside the longest "
                f"({old.text_length} < {full:g} chars)")
    new_at, old_at = new.reported_at or new.published_at, old.reported_at or old.published_at
    if new_at < old_at:
        late = " (its date is not credible: it counts from its first sighting)" if old.reported_at is not None else ""
        return f"{head}: reported {_span(old_at - new_at)} before #{old.article_id} ({old.source}){late}"
    return f"{head}: the earliest full report, ahead of #{old.article_id} ({old.source}) on the rule's tie-breaks (published, first seen, id)"


def with_figures(story: Story, stored: Sequence[TimelineEvent], revisions: Sequence[Revision]) -> list[TimelineEvent]:
    """The stored timeline with a ``figure`` line after each arrival that changes a category's
    newest value (the value of the latest-published variant giving one): "killed: 12 → 15 (Coast
    Radio)". Each variant counts with its text as it arrived (its first version); a revision then
    moves it to the next (the revision's own line says what that changed). ``story`` with text."""
    versions: dict[int, list[str]] = {}
    for r in revisions:  # by article, oldest first
        versions.setdefault(r.article_id, []).append(r.text)
    variants = {v.article_id: v for v in story.variants}
    for article_id, texts in versions.items():
        if article_id in variants:
            texts.append(variants[article_id].text)
    at_version: dict[int, int] = {}
    newest: dict[str, tuple[datetime, int, str]] = {}  # category -> (published, article, label) of the newest variant giving it
    out: list[TimelineEvent] = []
    for event in stored:
        out.append(event)
        v = variants.get(event.article_id) if event.article_id is not None else None
        if v is None or event.kind not in ("arrived", "revised"):
            continue
        texts = versions.get(v.article_id, [v.text])
        if event.kind == "revised":
            at_version[v.article_id] = min(at_version.get(v.article_id, 0) + 1, len(texts) - 1)
        for what, label in _figures(texts[at_version.get(v.article_id, 0)]).items():
            held = newest.get(what)
            if held is not None and (v.published_at, v.article_id) < held[:2]:
                continue  # an older report arriving late does not change the newest value
            newest[what] = (v.published_at, v.article_id, label)
            if event.kind == "arrived" and held is not None and held[2] != label:
                out.append(TimelineEvent(event.at, "figure", v.article_id, v.source, f"{what}: {held[2]} → {label} ({v.source})"))
    return out


def _quote(title: str) -> str:
    return repr(title if len(title) <= QUOTE_MAX else title[: QUOTE_MAX - 1] + "…")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120 * 60:
        return f"{max(seconds // 60, 1)} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
