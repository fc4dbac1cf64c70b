"""Why a story's canonical leads: the canonical rule's inputs for each of the story's members, and
the part of the rule that decided (``choose_canonical`` decides; this names why). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .canonical import FULL_REPORT_FRACTION, choose_canonical
from .index import ts
from .render import _jsonable, _utc


@dataclass(frozen=True)
class CanonicalMember:
    """A story member with the canonical rule's inputs (``reported_at``: its first sighting where its
    date was not credible, else None: see ``canonical.credible_time``)."""

    article_id: int
    source: str
    title: str
    published_at: datetime
    first_seen_at: datetime
    text_length: int
    reported_at: datetime | None = None
    full: bool = False  # text at least FULL_REPORT_FRACTION of the longest
    note: str = ""  # why it is or is not the canonical


@dataclass(frozen=True)
class CanonicalWhy:
    """Why a story's canonical is its canonical (``choose_canonical`` over its stored members)."""

    story_id: int
    stored_canonical_id: int
    chosen_id: int  # what ``choose_canonical`` chooses now, from the stored members
    longest: int
    full_length: float  # FULL_REPORT_FRACTION of the longest: the least text of a full report
    reason: str
    members: tuple[CanonicalMember, ...]

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        return data

    def lines(self) -> list[str]:
        out = [f"canonical: #{self.stored_canonical_id}, {self.reason}",
               f"a full report has at least {FULL_REPORT_FRACTION:g} × the longest text ({self.longest} chars) = {self.full_length:g} chars"]
        if self.chosen_id != self.stored_canonical_id:
            out.append(f"note: the rule now chooses #{self.chosen_id} from the stored members (the stored choice was made on the "
                       "members the index knew when the last one joined, or by an earlier version of the rule)")
        for m in self.members:
            mark = "*" if m.article_id == self.stored_canonical_id else " "
            reported = "" if m.reported_at is None else f", counts as reported {_utc(m.reported_at)} (its date is not credible)"
            out.append(f"{mark} #{m.article_id} {m.source}: {m.text_length} chars ({'full' if m.full else 'teaser'}), published "
                       f"{_utc(m.published_at)}, first seen {_utc(m.first_seen_at)}{reported}: {m.note}")
        return out


_KEY_PARTS = ("reported", "published", "first seen", "id")


def _canonical_key(m: CanonicalMember) -> tuple[float, float, float, int]:
    """What ``choose_canonical`` orders full reports by: reported time, then published, first seen, id."""
    reported = m.published_at if m.reported_at is None else m.reported_at
    return ts(reported), ts(m.published_at), ts(m.first_seen_at), m.article_id


def why_canonical(story_id: int, stored_canonical_id: int, members: Sequence[CanonicalMember]) -> CanonicalWhy:
    """Each member with the canonical rule's inputs and why it leads or not. ``choose_canonical``
    decides; the reason names the part of the rule that did (the only full report, or the first
    reported full report, and which tie-break if the times tie)."""
    chosen = choose_canonical(members)
    longest = max(m.text_length for m in members)
    half = FULL_REPORT_FRACTION * longest
    full = [m for m in members if m.text_length >= half]
    key = _canonical_key(chosen)

    def decided_by(m: CanonicalMember) -> str:
        """The first part of the order in which ``m`` comes after the canonical."""
        return next(name for name, mine, theirs in zip(_KEY_PARTS, key, _canonical_key(m), strict=True) if mine != theirs)

    def note(m: CanonicalMember) -> str:
        if m.article_id == chosen.article_id:
            return "the canonical"
        if m.text_length < half:
            return f"a teaser ({m.text_length} < {half:g} chars): never leads"
        if _canonical_key(m) < key:
            return "earlier by the rule's order, yet not chosen: canonical.py has a rule this explanation does not know"
        part = decided_by(m)
        later = "published" if m.reported_at is None and chosen.reported_at is None else "reported"
        return {"reported": f"a full report, {later} later", "published": "reported at the same time, published later",
                "first seen": "same times, first seen later", "id": "same times, higher id"}[part]

    others = [m for m in full if m.article_id != chosen.article_id]
    teasers_before = sum(1 for m in members if m.text_length < half and _canonical_key(m) < key)
    skipped = f"; {teasers_before} earlier teaser(s) never lead" if teasers_before else ""
    if not others:
        reason = f"the only full report{skipped}"
    else:
        nearest = min(others, key=_canonical_key)
        part = decided_by(nearest) if _canonical_key(nearest) > key else None
        if part is None:
            reason = "chosen by canonical.choose_canonical over a full report earlier by its order (see canonical.py)"
        elif part == "reported":
            reason = f"the earliest of {len(full)} full reports{skipped}"
        else:
            reason = f"the earliest of {len(full)} full reports, tied on the times before {part}: {part} decides{skipped}"
    if chosen.reported_at is None and any(m.reported_at is not None and m.published_at < chosen.published_at for m in full):
        reason += " (an earlier-dated full report's date is not credible: it counts from its first sighting)"
    noted = tuple(CanonicalMember(m.article_id, m.source, m.title, m.published_at, m.first_seen_at, m.text_length, m.reported_at,
                                  m.text_length >= half, note(m)) for m in members)
    return CanonicalWhy(story_id, stored_canonical_id, chosen.article_id, longest, half, reason, noted)
