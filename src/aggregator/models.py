"""Frozen records passed between pipeline stages.

Every stage takes and returns these; none of them knows about HTTP clients,
SQL sessions or the CLI.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy is loaded by the stages that need it, not by every reader of these records
    import numpy as np

MemberKind = Literal["canonical", "copy", "report"]
OUTLET_NAME_MAX = 80  # characters of a feed's title used as its outlet's name
ReadStatus = Literal["unread", "read", "updated"]


@dataclass(frozen=True)
class FeedState:
    """What the database knows about one feed."""

    id: int
    url: str
    name: str
    interval_s: int
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: datetime | None = None
    error_count: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    disabled_reason: str | None = None
    title: str | None = None
    learned_interval_s: int | None = None
    named: bool = True  # False: the config names no ``name``; the feed goes by its own title
    interval_set: bool = False  # True: the config sets ``interval``, and it is the interval used
    config_url: str | None = None  # as the config writes it (``url`` moves with a 301); None: not read from the database


def outlet_name(title: str | None) -> str | None:
    """A feed's title as the name of its outlet: one line, no control characters, at most
    ``OUTLET_NAME_MAX`` characters (cut at a word); None when nothing is left."""
    if not title:
        return None
    name = " ".join("".join(ch if ch.isprintable() else " " for ch in title).split())
    if len(name) > OUTLET_NAME_MAX:
        name = name[:OUTLET_NAME_MAX].rsplit(" ", 1)[0].rstrip(" ,;:-") + "…"
    return name or None


@dataclass(frozen=True)
class FetchResult:
    """The bytes of one HTTP exchange plus the facts we keep from its headers."""

    url: str
    final_url: str
    status: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None  # set when every redirect hop was 301/308

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class Entry:
    """One feed item as the feed describes it."""

    guid: str
    url: str | None
    title: str
    text: str  # its content as plain text, without the paragraphs every item of its feed repeats
    published: datetime | None
    author: str | None = None
    lang: str | None = None
    source: str | None = None  # the outlet named by the entry itself (<source>), for feeds that aggregate others
    source_url: str | None = None  # where that outlet is (<source url> in RSS, <source><link> in Atom): its site serves the article
    summary_html: str = ""  # the feed's own short summary (untrusted HTML), shown sanitized in the HTML digest


@dataclass(frozen=True)
class ParsedFeed:
    """A feed document turned into entries."""

    title: str | None
    site_url: str | None
    lang: str | None
    entries: tuple[Entry, ...]
    warning: str | None = None  # a recoverable parse problem (feedparser's bozo)
    ttl_minutes: int | None = None
    broken: bool = False  # the warning is one the feed's owner must fix (malformed XML), not a mislabelled type or charset
    repeated: frozenset[str] = frozenset()  # paragraphs (``parse.paragraph_keys``) that several of its items hold: a change in them is layout


@dataclass(frozen=True)
class PageText:
    """What extraction got out of an article page."""

    text: str
    title: str | None = None
    published: datetime | None = None
    lang: str | None = None


@dataclass(frozen=True)
class Article:
    """An article ready to be deduplicated and stored."""

    feed_id: int
    guid: str
    url: str | None
    title: str
    text: str
    published_at: datetime
    first_seen_at: datetime
    lang: str | None
    source: str
    content_hash: str
    from_page: bool = False  # text came from the article page, not the feed
    summary_html: str = ""
    reported_at: datetime | None = None  # its first sighting, where ``published_at`` is not credible (``dedup.canonical.credible_time``)


@dataclass(frozen=True)
class FeedUpdate:
    """What should change on a feed after a poll: the decider's intent."""

    next_poll_at: datetime
    error_count: int
    last_error: str | None
    etag: str | None
    last_modified: str | None
    success: bool
    disabled_reason: str | None = None
    new_url: str | None = None
    learned_interval_s: int | None = None


@dataclass(frozen=True)
class Variant:
    """One article as a member of a story, for display."""

    article_id: int
    story_id: int
    kind: MemberKind
    similarity: float
    source: str
    title: str
    url: str | None
    published_at: datetime
    first_seen_at: datetime
    text: str = ""
    summary_html: str = ""
    reported_at: datetime | None = None  # its first sighting, where its date is not credible (``dedup.canonical.credible_time``)


def first_reported(variants: Sequence[Variant]) -> Variant:
    """The first *reported* variant: by its credible time (``dedup.canonical.credible_time``), as the canonical rule orders them."""
    return min(variants, key=lambda v: (v.reported_at or v.published_at, v.published_at, v.first_seen_at, v.article_id))


@dataclass(frozen=True)
class Story:
    """A cluster of reports of one event, with its canonical variant."""

    id: int
    title: str
    canonical_article_id: int
    first_reported_at: datetime
    first_source: str
    updated_at: datetime
    variants: tuple[Variant, ...]
    read_at: datetime | None = None  # when the reader last marked it read (None: never)

    @property
    def status(self) -> ReadStatus:
        """``unread`` (never marked read), ``read``, or ``updated`` (read, then new variants came)."""
        if self.read_at is None:
            return "unread"
        return "updated" if self.new_variants else "read"

    @property
    def new_variants(self) -> tuple[Variant, ...]:
        """Variants first seen after the story was marked read (all of them while it is unread)."""
        if self.read_at is None:
            return self.variants
        read_at = self.read_at
        return tuple(v for v in self.variants if v.first_seen_at > read_at)

    @functools.cached_property  # (ranking, listing and --json each ask for it)
    def sources(self) -> tuple[str, ...]:
        """Distinct outlets, in the order they reported."""
        ordered = sorted(self.variants, key=lambda v: (v.published_at, v.article_id))
        return tuple(dict.fromkeys(v.source for v in ordered))

    @property
    def canonical(self) -> Variant:
        return next(v for v in self.variants if v.article_id == self.canonical_article_id)

    @property
    def first_variant(self) -> Variant:
        """The first *reported* variant (``first_reported``)."""
        return first_reported(self.variants)


@dataclass(frozen=True)
class PollReport:
    """What one feed poll did, for logs and the CLI."""

    feed_url: str
    status: int | None
    new_articles: int
    error: str | None = None
    not_modified: bool = False
    warning: str | None = None  # the feed was read, but is broken in a way its readers should fix (malformed XML, ...)


@dataclass(frozen=True)
class SignatureChunk:
    """Stored signatures of consecutive articles, column by column: what a restart reads."""

    article_ids: np.ndarray  # int64
    story_ids: np.ndarray  # int64
    published: np.ndarray  # float64 seconds since the epoch
    data: Sequence[bytes]  # encoded signatures (``Deduplicator.encode``)
    sources: Sequence[str | None]
    first_seen: np.ndarray  # float64 seconds since the epoch
    text_lengths: np.ndarray  # int32 characters of text (the canonical rule)

    def select(self, keep: np.ndarray) -> SignatureChunk:
        """The rows where ``keep`` (a boolean mask) is true."""
        at = [i for i, k in enumerate(keep.tolist()) if k]
        return SignatureChunk(self.article_ids[keep], self.story_ids[keep], self.published[keep], [self.data[i] for i in at],
                              [self.sources[i] for i in at], self.first_seen[keep], self.text_lengths[keep])


@dataclass(frozen=True)
class SearchHit:
    """One stored article matching a search, with a snippet of its text around the match."""

    article_id: int
    story_id: int
    title: str
    source: str
    url: str | None
    published_at: datetime
    snippet: str  # plain text
    marks: tuple[tuple[int, int], ...]  # [start, end) of each matched word in ``snippet``


@dataclass(frozen=True)
class SearchResult:
    """A story with its articles that match a search (the story's variants carry no text)."""

    story: Story
    hits: tuple[SearchHit, ...]


@dataclass(frozen=True)
class TimelineEvent:
    """One line of a story's timeline: a variant arriving (``arrived``), the canonical changing
    (``canonical``), an article revised by its feed (``revised``), a figure's newest value changing
    (``figure``), or a correction (``split``, ``merged``, ...); ``text`` says what and why."""

    at: datetime
    kind: str
    article_id: int | None
    source: str | None
    text: str


@dataclass(frozen=True)
class Revision:
    """A version an article had before its feed changed it (the article holds the latest)."""

    article_id: int
    source: str
    seen_at: datetime  # when this version was first seen
    replaced_at: datetime  # when the next version replaced it
    title: str
    text: str
