"""Across a story's variants: per category, the values they give, the outlets and named sources
behind each, which is newest, and the one line that sums it up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .figures import extract_figures
from .records import CATEGORIES, VAGUE, Figure

if TYPE_CHECKING:
    from ..models import Story

_GENERIC = {"", "people", "persons", "personnes", "civilians", "civils", "others", "autres"}


@dataclass(frozen=True)
class FactValue:
    """One figure for a category as some outlets report it."""

    key: str  # what makes two reports the same value: the number, or a VAGUE plural
    value: int
    label: str
    outlets: tuple[str, ...]  # in the order they published
    attributions: tuple[str, ...]  # the sources they name for it, most named first
    first_published: datetime
    last_published: datetime


@dataclass(frozen=True)
class FactGroup:
    """What a story's variants say for one category: every distinct value, most outlets first."""

    what: str
    values: tuple[FactValue, ...]
    newest: FactValue  # the value the most recently published variant gives

    @property
    def agree(self) -> bool:
        return len(self.values) == 1


def _headline_figure(figures: Iterable[Figure], what: str) -> Figure | None:
    """A variant's figure for a category: its first total ("12 people"), else its first figure; later
    sub-counts ("3 of its members") and background ("a war that killed 500,000") are not its claim."""
    of_what = [f for f in figures if f.what == what]
    if not of_what:
        return None
    return next((f for f in of_what if f.counted.lower() in _GENERIC), of_what[0])


def compare(variants: Sequence[tuple[str, datetime, str, str | None]]) -> list[FactGroup]:
    """Per category, the values a story's variants give (``(source, published, text, lang)`` each), the
    outlets and named sources behind each, and the newest. Categories most reported first."""
    per_variant = [(source, published, extract_figures(text, lang)) for source, published, text, lang in variants]
    groups = []
    for what in CATEGORIES:
        reports: dict[str, list[tuple[str, datetime, Figure]]] = {}
        for source, published, figures in per_variant:
            fig = _headline_figure(figures, what)
            if fig is not None:
                key = fig.qualifier if fig.qualifier in VAGUE else str(fig.value)
                reports.setdefault(key or "", []).append((source, published, fig))
        if not reports:
            continue
        values = []
        for key, rows in reports.items():
            rows.sort(key=lambda r: r[1])
            attrs = Counter(f.attribution for _, _, f in rows if f.attribution)
            labels = Counter(f.label for _, _, f in rows)
            values.append(
                FactValue(
                    key,
                    rows[0][2].value,
                    labels.most_common(1)[0][0],
                    tuple(dict.fromkeys(s for s, _, _ in rows)),
                    tuple(a for a, _ in attrs.most_common()),
                    rows[0][1],
                    rows[-1][1],
                )  # fmt: skip
            )
        values.sort(key=lambda v: (-len(v.outlets), v.first_published))
        newest = max(values, key=lambda v: (v.last_published, len(v.outlets)))
        groups.append(FactGroup(what, tuple(values), newest))
    groups.sort(key=lambda g: -sum(len(v.outlets) for v in g.values))
    return groups


def story_facts(story: Story) -> list[FactGroup]:
    """``compare`` over a story's variants (loaded with their text)."""
    return compare([(v.source, v.published_at, v.text, None) for v in story.variants])


def summary_line(groups: Sequence[FactGroup]) -> str:
    """One line for a story: "killed: 12 (Syrian Observatory, 5 outlets) · 15 (local medics, 1 outlet); newest: 15 |
    injured: 30 (2 outlets)". A category whose variants agree shows no "newest"."""
    parts = []
    for g in groups:
        shown = []
        for v in g.values:
            n = len(v.outlets)
            who = [*v.attributions[:2], f"{n} outlet{'s' if n != 1 else ''}"]
            shown.append(f"{v.label} ({', '.join(who)})")
        line = f"{g.what}: " + " · ".join(shown)
        if not g.agree:
            line += f"; newest: {g.newest.label}"
        parts.append(line)
    return " | ".join(parts)
