"""Which member of a story is its canonical, and what every other member is relative to it. Pure:
the facts come from the window (``index.Fact``), the relation between two members from the rule.

Being first is decided on each member's *reported* time (``credible_time``): the date its feed
gave, unless that date is earlier than when we first saw the article by more than the feed's
polling gap plus a margin; then its first sighting. A feed cannot make an article first by dating
it in the past."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from ..models import MemberKind

FULL_REPORT_FRACTION = 0.5
CREDIBLE_MARGIN_S = 3600.0  # how much earlier than its feed's polling gap a date may be and still count
NEW_ARTICLE = 2**62  # the id an article not stored yet goes by: above every stored id, as its own will be


class CanonicalCandidate(Protocol):
    @property
    def article_id(self) -> int: ...
    @property
    def published_at(self) -> datetime | float: ...
    @property
    def first_seen_at(self) -> datetime | float: ...
    @property
    def text_length(self) -> int: ...


C = TypeVar("C", bound=CanonicalCandidate)


def credible_time(published: float, first_seen: float, gap: float | None) -> float:
    """When an article counts as reported (seconds since the epoch): its published time, unless
    that is earlier than its first sighting by more than ``gap`` (how long its feed went unpolled
    before it: no new item can have waited longer) plus ``CREDIBLE_MARGIN_S`` (a publisher's own
    feed lag); then the first sighting. ``gap`` None: no limit (nothing was seen before)."""
    if gap is None or published >= first_seen - (gap + CREDIBLE_MARGIN_S):
        return published
    return first_seen


def reported(member: CanonicalCandidate) -> datetime | float:
    """A member's reported time: its ``reported_at`` (if it has one) where its date was not
    credible, else its date."""
    late = getattr(member, "reported_at", None)  # (optional: a candidate without it has only credible dates)
    return member.published_at if late is None else late


def choose_canonical(members: Sequence[C]) -> C:
    """The earliest *full* report: first reported (``reported``) among members whose text is at
    least half as long as the story's longest (a teaser or stub never leads, however early).
    Ties go to the earliest published, then the first seen, then to the lowest article id, so the
    choice is stable."""
    longest = max(m.text_length for m in members)
    full = [m for m in members if m.text_length >= FULL_REPORT_FRACTION * longest]
    return min(full, key=lambda m: (reported(m), m.published_at, m.first_seen_at, m.article_id))


@dataclass(frozen=True)
class Member:
    """A story member as the canonical rule sees it (times in seconds since the epoch;
    ``reported_at``: its first sighting where its date was not credible, else None)."""

    article_id: int
    published_at: float
    first_seen_at: float
    text_length: int
    reported_at: float | None = None

    @property
    def reported(self) -> float:
        """When it counts as reported (``credible_time``)."""
        return self.published_at if self.reported_at is None else self.reported_at


@dataclass(frozen=True)
class MemberUpdate:
    """A member's kind and similarity relative to the story's canonical."""

    article_id: int
    kind: MemberKind
    similarity: float


@dataclass(frozen=True)
class Settlement:
    """A story once an article joins it: its canonical (``NEW_ARTICLE``: the article itself), its
    first report's time (``reported``), the article's own kind and similarity, and the other members whose
    kind and similarity change (all of them when the canonical changes)."""

    canonical_id: int
    first_reported: float
    own: MemberUpdate
    changed: tuple[MemberUpdate, ...]


Relation = Callable[[int, int], tuple[Literal["copy", "report"], float]]  # (member id, canonical id) -> kind, similarity


def settle(members: Sequence[Member], new: Member, relation: Relation) -> Settlement:
    """``new`` joins a story of ``members`` (its id is ``NEW_ARTICLE`` when not stored yet). Kind and
    similarity are relative to the canonical: a new canonical means recomputing them all; otherwise
    only the new member's."""
    if not members:
        return Settlement(new.article_id, new.reported, MemberUpdate(new.article_id, "canonical", 1.0), ())
    previous = choose_canonical(members).article_id
    everyone = [*members, new]
    canonical = choose_canonical(everyone).article_id
    first = min(m.reported for m in everyone)

    def relative(article_id: int) -> MemberUpdate:
        if article_id == canonical:
            return MemberUpdate(article_id, "canonical", 1.0)
        kind, similarity = relation(article_id, canonical)
        return MemberUpdate(article_id, kind, round(similarity, 4))

    changed = () if canonical == previous else tuple(relative(m.article_id) for m in members)
    return Settlement(canonical, first, relative(new.article_id), changed)
