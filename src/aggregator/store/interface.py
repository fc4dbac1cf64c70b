"""What the rest of the program sees of storage: the records it hands out and the protocols
(``StoreProtocol``, and the ``ReadProtocol``/``TransactionProtocol`` objects it lends inside a
``with``). Nothing here names SQLAlchemy, so another backend (PostgreSQL, a worker process
owning the database) can stand behind them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..models import Article, FeedState, FeedUpdate, MemberKind, Revision, SearchHit, SignatureChunk, Story, TimelineEvent

# (feed id, change, when, title, site URL): the last two only when the feed gave them
FeedChange = tuple[int, FeedUpdate, datetime, str | None, str | None]
# (config URL, name or None where the config names none, interval in seconds, whether the config sets it)
ConfiguredFeed = tuple[str, str | None, int, bool]


@dataclass(frozen=True)
class Joined:
    """What an article joining a story changes (the dedup stage's placement, as stored): the
    article's kind and similarity to the canonical, the story's canonical and first report time,
    and the other members whose kind and similarity changed, as (article id, kind, similarity)."""

    kind: MemberKind
    similarity: float
    canonical_id: int
    first_reported_at: datetime
    changed: tuple[tuple[int, MemberKind, float], ...] = ()


@dataclass(frozen=True)
class StoredSignature:
    """One stored article's dedup signature, with what the index keeps beside it."""

    article_id: int
    story_id: int
    published_at: datetime
    data: bytes
    source: str
    first_seen_at: datetime
    text_length: int


@dataclass(frozen=True)
class MemberFacts:
    """A story member as a correction needs it: what the canonical rule reads, its kind and
    similarity as stored (relative to its story's canonical, ``canonical_id``) and its signature."""

    article_id: int
    story_id: int
    canonical_id: int
    kind: MemberKind
    similarity: float
    published_at: datetime
    first_seen_at: datetime
    reported_at: datetime | None
    text_length: int
    signature: bytes | None


@dataclass(frozen=True)
class Regrouped:
    """A story after a correction (``story_id`` None: a new one): its canonical, its first report's
    time and every member with its kind and similarity to the canonical."""

    story_id: int | None
    canonical_id: int
    first_reported_at: datetime
    members: tuple[tuple[int, MemberKind, float], ...]


@dataclass(frozen=True)
class Correction:
    """The reader's split or merge. Split: ``article_ids`` left ``story_id`` for the new story
    ``other_story_id``. Merge: ``article_ids`` (all of ``other_story_id`` then) joined ``story_id``."""

    id: int
    kind: str
    story_id: int
    other_story_id: int
    article_ids: tuple[int, ...]
    created_at: datetime
    undone_at: datetime | None = None


@dataclass(frozen=True)
class CorrectionRequest:
    """A correction asked for: ``kind`` split (``article_ids`` out of ``story_id``), merge
    (``other_story_id`` into ``story_id``) or undo (of ``correction_id``). Queued (``id``, from 1)
    while another process owns the dedup index (the daemon), which applies it: ``status`` pending,
    then done (``correction_id``: the correction made, or undone) or failed (``reason``, one line)."""

    kind: str
    story_id: int | None = None
    other_story_id: int | None = None
    article_ids: tuple[int, ...] = ()
    correction_id: int | None = None
    id: int = 0  # 0: not queued
    requested_at: datetime | None = None
    status: str = "pending"
    reason: str | None = None
    finished_at: datetime | None = None


class CorrectionWriter(Protocol):
    """Where a correction is written: the store itself, or the queue answering a request (the
    correction and the request's "done" in one transaction)."""

    def apply_correction(self, kind: str, story_id: int, other_story_id: int | None, article_ids: Sequence[int],
                         groups: Sequence[Regrouped], now: datetime) -> Correction: ...
    def undo_correction(self, correction_id: int, groups: Sequence[Regrouped], now: datetime) -> Correction: ...


class CorrectionQueueProtocol(Protocol):
    """The corrections asked for while another process owns the dedup index, oldest first: any
    process queues one (``add``); the owner (the daemon, later a clusterer) applies them
    (``answering``) or fails them with a reason (``fail``)."""

    def add(self, asked: CorrectionRequest, now: datetime) -> CorrectionRequest: ...
    def get(self, request_id: int) -> CorrectionRequest | None: ...
    def pending(self) -> list[CorrectionRequest]: ...
    def unfinished(self) -> list[CorrectionRequest]:
        """Those pending and those failed, oldest first."""
        ...
    def fail(self, request_id: int, reason: str, now: datetime) -> None: ...
    def answering(self, request_id: int) -> CorrectionWriter:
        """Writes a correction and marks the request done with it, in one transaction."""
        ...


@dataclass(frozen=True)
class StoredEntry:
    """An entry a feed gave before, as a poll compares it with what the feed gives now: its
    article, the stored content's hash (``Ingest``'s ``content_hash``), title and where the text came from."""

    guid: str
    url: str | None
    article_id: int
    content_hash: str
    title: str
    from_page: bool


@dataclass(frozen=True)
class ArticleVersion:
    """An article's current version, as a revision replaces it (``seen_at``: when this version was
    first seen: the article's first sighting, or when the previous version was replaced)."""

    article_id: int
    story_id: int | None
    source: str
    title: str
    text: str
    content_hash: str
    seen_at: datetime


@dataclass(frozen=True)
class LeadFacts:
    """What the canonical rule reads of a member, to say why a canonical changed."""

    article_id: int
    source: str
    published_at: datetime
    reported_at: datetime | None
    text_length: int


class ReadProtocol(Protocol):
    """Reads that see one consistent state (``StoreProtocol.reading``)."""

    def known_guids(self, feed_id: int, guids: Iterable[str]) -> set[str]:
        """Which of these entry ids this feed already gave us."""
        ...

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        """Which of these (normalised) article URLs are stored, from any feed."""
        ...

    def url_owners(self, urls: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """Of these (normalised) article URLs, those stored: (article id, the site URL of the feed
        that stored it, where it gave one)."""
        ...

    def known_entries(self, feed_id: int, guids: Iterable[str], urls: Iterable[str]) -> list[StoredEntry]:
        """This feed's stored entries with one of these ids or (normalised) article URLs (one query)."""
        ...


class TransactionProtocol(ReadProtocol, Protocol):
    """One atomic unit of work (``StoreProtocol.transaction``): it commits when the ``with`` ends
    normally, and rolls back when it raises."""

    def insert_article(self, article: Article) -> int:
        """Store an article; returns its id."""
        ...

    def insert_signature(self, article_id: int, scheme: str, data: bytes) -> None:
        """Store an article's signature."""
        ...

    def recredit_article(self, article_id: int, feed_id: int, guid: str, source: str) -> None:
        """The article belongs to the feed whose site serves it: its feed, entry id and outlet change."""
        ...

    def create_story(self, article: Article, article_id: int, now: datetime) -> int:
        """A new story with this article as its canonical member; returns the story's id."""
        ...

    def join_story(self, story_id: int, article_id: int, joined: Joined, now: datetime) -> None:
        """An article joins a story, as the dedup stage placed it."""
        ...

    def rename_feed(self, feed_id: int, old: str, new: str) -> None:
        """The feed goes by ``new``, and so do the articles it stored under ``old``."""
        ...

    def apply_feed_updates(self, changes: Iterable[FeedChange]) -> None:
        """Feeds' new states, in order."""
        ...

    def article_version(self, article_id: int) -> ArticleVersion | None:
        """An article's current version (None: no such article)."""
        ...

    def revise_article(self, old: ArticleVersion, title: str, text: str, content_hash: str, from_page: bool, summary_html: str,
                       now: datetime) -> None:
        """Keep ``old`` as a revision replaced at ``now``; the article takes the new version; its story is updated at ``now``."""
        ...

    def add_story_event(self, story_id: int, at: datetime, kind: str, article_id: int | None, detail: str) -> None:
        """A line of the story's timeline beyond its members' arrivals (``story_events``)."""
        ...

    def story_canonical(self, story_id: int) -> int | None:
        """The story's canonical article as stored now."""
        ...

    def lead_facts(self, article_ids: Sequence[int]) -> dict[int, LeadFacts]:
        """What the canonical rule reads of these articles."""
        ...

    def consume_inbox(self, ids: Sequence[int]) -> None:
        """The inbox's answers this transaction stores leave it (an error if one is gone already)."""
        ...


class StoreProtocol(Protocol):
    """Feeds, articles, signatures and stories, as the program uses them."""

    @property
    def url(self) -> str:
        """The database URL (for messages)."""
        ...

    def put_inbox(self, answers: Sequence[tuple[int, int, bytes]], now: datetime) -> list[int]:
        """Keep workers' answers until the clusterer stores them, in one transaction: (feed id,
        articles carried, data) each; returns their inbox ids."""
        ...

    def take_inbox(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest answers waiting in the inbox: (inbox id, data)."""
        ...

    def inbox_backlog(self) -> tuple[int, int, datetime | None]:
        """(answers waiting, articles they carry, when the oldest arrived)."""
        ...

    def pending_polls(self, task: str) -> set[int]:
        """The feeds a cluster's worker has a poll (procrastinate ``task``) queued or running for."""
        ...

    def polls_pending(self, task: str) -> bool:
        """Whether a cluster's worker has a poll (procrastinate ``task``) queued or running."""
        ...

    def claim_pages(self, urls: Sequence[str], now: datetime, stale_before: datetime, done_before: datetime) -> set[str]:
        """Claim a cluster's pages to fetch them: those whose claim this caller holds."""
        ...

    def finish_pages(self, pages: Sequence[tuple[str, bytes]], now: datetime) -> None:
        """The claimed pages' extracted text, for the other workers: (url, data) each."""
        ...

    def release_pages(self, urls: Sequence[str]) -> None:
        """Unfinished claims given up (their fetch failed): the next worker to ask takes them."""
        ...

    def claimed_pages(self, urls: Sequence[str]) -> dict[str, tuple[bool, bytes | None]]:
        """(done, data) of each page of ``urls`` that has a claim."""
        ...

    def forget_pages(self, before: datetime) -> int:
        """Page claims made before ``before`` go; returns how many."""
        ...

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[TransactionProtocol]:
        """One atomic unit of work: everything inside commits together or not at all."""
        ...

    def reading(self) -> AbstractContextManager[ReadProtocol]:
        """Several reads on one connection."""
        ...

    # -- feeds
    def sync_feeds(self, configured: Sequence[ConfiguredFeed], refresh: bool = True) -> None: ...
    def fetch_settings_changed(self, fingerprint: str, config_urls: Sequence[str], now: datetime) -> int: ...
    def feeds(self, config_urls: Iterable[str] | None = None) -> list[FeedState]: ...
    def due_feeds(self, now: datetime, limit: int, feed_ids: Sequence[int] | None = None) -> list[FeedState]:
        """Enabled feeds due at ``now`` with no answer waiting in the inbox, the longest due first (at
        most ``limit``; of ``feed_ids`` alone when given)."""
        ...

    def feed(self, feed_id: int) -> FeedState: ...
    def enable_feed(self, url: str, now: datetime) -> bool: ...

    # -- signatures and dedup snapshots
    def signature_schemes(self) -> set[str]: ...
    def signatures(self, since: datetime | None = None, up_to: int | None = None, after: int | None = None) -> Iterator[StoredSignature]: ...
    def signature_chunks(self, size: int, since: datetime | None = None, up_to: int | None = None) -> Iterator[SignatureChunk]: ...
    def retired_members(self, since: datetime) -> Iterator[tuple[int, int, datetime, datetime, int, bytes]]: ...
    def late_members(self, since: datetime) -> Iterator[tuple[int, datetime]]: ...
    def latest_snapshot(self, scheme: str) -> tuple[int, bytes] | None: ...
    def save_snapshot(self, scheme: str, last_article_id: int, data: bytes, now: datetime) -> None: ...

    # -- the stories read model
    def story_ids_between(self, start: datetime, end: datetime, activity: bool = True) -> list[int]: ...
    def load_stories(self, story_ids: Sequence[int], with_text: bool = False) -> list[Story]: ...
    def counts(self) -> dict[str, int]: ...

    # -- the reader: read marks and search
    def mark_read(self, story_ids: Sequence[int], now: datetime) -> int: ...
    def mark_unread(self, story_ids: Sequence[int]) -> int: ...
    def search(self, terms: Sequence[str], limit: int) -> list[SearchHit]: ...

    # -- a story's history: its timeline and its articles' earlier versions
    def timeline(self, story_id: int) -> list[TimelineEvent]: ...
    def revisions(self, story_id: int) -> list[Revision]: ...

    # -- the reader's corrections (``store/corrections.py``)
    def member_facts(self, story_ids: Sequence[int]) -> list[MemberFacts]: ...
    def apply_correction(self, kind: str, story_id: int, other_story_id: int | None, article_ids: Sequence[int],
                         groups: Sequence[Regrouped], now: datetime) -> Correction: ...
    def undo_correction(self, correction_id: int, groups: Sequence[Regrouped], now: datetime) -> Correction: ...
    def corrections(self) -> list[Correction]: ...

    def correction_queue(self) -> CorrectionQueueProtocol:
        """The corrections asked for while another process owns the dedup index."""
        ...

    def merged_into(self, story_id: int) -> int | None:
        """The story a merge still standing moved ``story_id``'s members into, through later merges to where they are now."""
        ...
