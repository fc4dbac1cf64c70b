"""``Store``, the SQLAlchemy Core implementation of ``StoreProtocol``, and the ``Reading`` and
``Transaction`` objects it lends. They own the engine and its connections; the queries live in
``feeds``, ``articles`` and ``stories``, the schema in ``schema``.

SQLite (WAL) by default; times are stored as naive UTC and handed out as aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..errors import StorageError
from ..models import Article, FeedState, Revision, SearchHit, SignatureChunk, Story, TimelineEvent
from ..readahead import read_ahead
from . import articles, corrections, feeds, inbox, pageclaims, search, stories, timeline
from .interface import (
    ArticleVersion,
    ConfiguredFeed,
    Correction,
    CorrectionQueueProtocol,
    FeedChange,
    Joined,
    LeadFacts,
    MemberFacts,
    Regrouped,
    StoredEntry,
    StoredSignature,
)
from .schema import get_meta, migrate, set_meta, sqlite_pragmas

FETCH_SETTINGS_KEY = "fetch_settings"


class Reading:
    """Reads on one connection, lent by ``Store.reading`` (see ``ReadProtocol``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def known_guids(self, feed_id: int, guids: Iterable[str]) -> set[str]:
        """Which of these entry ids this feed already gave us."""
        return articles.known_guids(self._conn, feed_id, guids)

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        """Which of these (normalised) article URLs are stored, from any feed."""
        return articles.known_urls(self._conn, urls)

    def url_owners(self, urls: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """Of these (normalised) article URLs, those stored: (article id, its feed's site URL)."""
        return articles.url_owners(self._conn, urls)

    def known_entries(self, feed_id: int, guids: Iterable[str], urls: Iterable[str]) -> list[StoredEntry]:
        """This feed's stored entries with one of these ids or (normalised) article URLs (one query)."""
        return articles.known_entries(self._conn, feed_id, guids, urls)


class Transaction(Reading):
    """One atomic unit of work, lent by ``Store.transaction`` (see ``TransactionProtocol``)."""

    def insert_article(self, article: Article) -> int:
        """Store an article; returns its id."""
        return articles.insert_article(self._conn, article)

    def insert_signature(self, article_id: int, scheme: str, data: bytes) -> None:
        """Store an article's signature."""
        articles.insert_signature(self._conn, article_id, scheme, data)

    def recredit_article(self, article_id: int, feed_id: int, guid: str, source: str) -> None:
        """The article belongs to the feed whose site serves it: its feed, entry id and outlet change."""
        articles.recredit_article(self._conn, article_id, feed_id, guid, source)

    def create_story(self, article: Article, article_id: int, now: datetime) -> int:
        """A new story with this article as its canonical member; returns the story's id."""
        return stories.create_story(self._conn, article, article_id, now)

    def join_story(self, story_id: int, article_id: int, joined: Joined, now: datetime) -> None:
        """An article joins a story, as the dedup stage placed it."""
        stories.join_story(self._conn, story_id, article_id, joined, now)

    def rename_feed(self, feed_id: int, old: str, new: str) -> None:
        """The feed goes by ``new``, and so do the articles it stored under ``old``."""
        feeds.rename_feed(self._conn, feed_id, old, new)

    def apply_feed_updates(self, changes: Iterable[FeedChange]) -> None:
        """Feeds' new states, in order: (feed id, change, when, title, site URL), the last two only
        when the feed gave them. Consecutive updates setting the same columns run as one statement."""
        feeds.apply_feed_updates(self._conn, changes)

    def article_version(self, article_id: int) -> ArticleVersion | None:
        """An article's current version (None: no such article)."""
        return articles.article_version(self._conn, article_id)

    def revise_article(self, old: ArticleVersion, title: str, text: str, content_hash: str, from_page: bool, summary_html: str,
                       now: datetime) -> None:
        """Keep ``old`` as a revision replaced at ``now``; the article takes the new version; its story is updated at ``now``."""
        articles.revise_article(self._conn, old, title, text, content_hash, from_page, summary_html, now)

    def add_story_event(self, story_id: int, at: datetime, kind: str, article_id: int | None, detail: str) -> None:
        """A line of the story's timeline beyond its members' arrivals (``story_events``)."""
        stories.add_story_event(self._conn, story_id, at, kind, article_id, detail)

    def story_canonical(self, story_id: int) -> int | None:
        """The story's canonical article as stored now."""
        return stories.story_canonical(self._conn, story_id)

    def lead_facts(self, article_ids: Sequence[int]) -> dict[int, LeadFacts]:
        """What the canonical rule reads of these articles."""
        return articles.lead_facts(self._conn, article_ids)

    def consume_inbox(self, ids: Sequence[int]) -> None:
        """The inbox's answers this transaction stores leave it (``InboxConflict`` if one is gone already)."""
        inbox.consume(self._conn, ids)


def shown(url: str) -> str:
    """A database URL fit for a message or a log: its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def reason(exc: SQLAlchemyError) -> str:
    """A database error in one line: its class and the driver's words (PostgreSQL's span lines)."""
    return f"{exc.__class__.__name__}: " + " ".join(str(getattr(exc, "orig", None) or exc).split())


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite database URL names (None: another database, or SQLite in memory)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


class Store:
    """Feeds, articles, signatures and stories in one database.

    Opening creates the SQLite file's directory, the engine, and the schema (or migrates it).
    ``engine`` is there for tests and benchmarks that inspect or bulk-load the database; the
    program goes through ``transaction()``, ``reading()`` and the methods below.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        found = sqlite_file(url)
        if found is not None:
            directory = found.parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"{directory}: cannot create the storage directory (settings.storage): {exc.strerror or exc}") from None
        try:
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", sqlite_pragmas)
            # PostgreSQL: the same pool, its connections lent in autocommit (see ``_each_statement``).
            self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.engine.dialect.name == "postgresql" else None
            migrate(self.engine, shown(url))
        except SQLAlchemyError as exc:
            raise StorageError(f"{shown(url)}: cannot open database: {reason(exc)}") from None
        except ImportError as exc:  # a database URL whose driver is not installed
            raise StorageError(f"{shown(url)}: the database driver is not installed ({exc.name or exc}): pip install the driver your database_url names (e.g. psycopg for postgresql+psycopg)") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic unit of work: everything inside commits together or not at all."""
        with self._begin() as conn:
            yield Transaction(conn)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"database error, transaction rolled back: {reason(exc)}") from exc

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        """Several reads on one connection."""
        with self._each_statement() as conn:
            yield Reading(conn)

    @contextmanager
    def _each_statement(self, writes: bool = False) -> Iterator[Connection]:
        """A connection for reads, or for a write that is one statement: on PostgreSQL each statement
        commits on its own (autocommit), with no BEGIN and COMMIT or ROLLBACK around it, two round
        trips fewer (a worker's per-poll looks and page claims made most of its statements so). Reads
        lose nothing: under READ COMMITTED each statement takes its own snapshot in a transaction too.
        Elsewhere ``_begin`` for a write, ``_connect`` for reads, as ever (SQLite has no round trips)."""
        if self._autocommit is None:
            with self._begin() if writes else self._connect() as conn:
                yield conn
            return
        try:
            with self._autocommit.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"{shown(self.url)}: {'database error' if writes else 'cannot read the database'}: {reason(exc)}") from exc

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection for reads; database errors become ``StorageError`` (a reader, such as the
        web app, says "the database cannot be read" without knowing SQLAlchemy)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"{shown(self.url)}: cannot read the database: {reason(exc)}") from exc

    # -- feeds ------------------------------------------------------------------

    def sync_feeds(self, configured: Sequence[ConfiguredFeed], refresh: bool = True) -> None:
        """Insert feeds new to the config and (``refresh``) bring name/interval of known ones up to
        it. See ``feeds.sync_feeds``."""
        with self._begin() as conn:
            feeds.sync_feeds(conn, configured, refresh)

    def fetch_settings_changed(self, fingerprint: str, config_urls: Sequence[str], now: datetime) -> int:
        """Record the config's fetch settings (a digest of them); when they differ from the last
        recorded, the feeds backing off after errors are due at ``now`` (the errors may have been
        the config's: a blocked address, a missing CA). Returns how many were made due."""
        with self._begin() as conn:
            last = get_meta(conn, FETCH_SETTINGS_KEY)
            if last == fingerprint:
                return 0
            set_meta(conn, FETCH_SETTINGS_KEY, fingerprint)
            return feeds.retry_failing(conn, config_urls, now) if last is not None else 0

    def feeds(self, config_urls: Iterable[str] | None = None) -> list[FeedState]:
        """Stored feeds in id order (only those configured under ``config_urls``, when given)."""
        with self._connect() as conn:
            return feeds.all_feeds(conn, config_urls)

    def due_feeds(self, now: datetime, limit: int, feed_ids: Sequence[int] | None = None) -> list[FeedState]:
        """Enabled feeds due at ``now`` with no answer waiting in the inbox, the longest due first (at
        most ``limit``; of ``feed_ids`` alone when given)."""
        with self._each_statement() as conn:
            return feeds.due_feeds(conn, now, limit, feed_ids)

    def feed(self, feed_id: int) -> FeedState:
        """One feed's stored state."""
        with self._connect() as conn:
            return feeds.feed(conn, feed_id)

    def enable_feed(self, url: str, now: datetime) -> bool:
        """Clear a feed's disabled reason and errors, due now; False when no feed has this
        address (as configured, or where it moved)."""
        with self._begin() as conn:
            return feeds.enable_feed(conn, url, now)

    # -- the inbox: answers fetched by workers, for the clusterer -----------------------

    def put_inbox(self, answers: Sequence[tuple[int, int, bytes]], now: datetime) -> list[int]:
        """Keep workers' answers until the clusterer stores them, in one statement: (feed id,
        articles carried, data) each; returns their inbox ids."""
        with self._each_statement(writes=True) as conn:
            return inbox.put(conn, answers, now)

    def take_inbox(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest answers waiting in the inbox: (inbox id, data)."""
        with self._connect() as conn:
            return inbox.take(conn, limit)

    def inbox_backlog(self) -> tuple[int, int, datetime | None]:
        """(answers waiting, articles they carry, when the oldest arrived)."""
        with self._connect() as conn:
            return inbox.backlog(conn)

    def pending_polls(self, task: str) -> set[int]:
        """The feeds a cluster's worker has a poll (procrastinate ``task``) queued or running for."""
        with self._each_statement() as conn:
            return inbox.pending_polls(conn, task)

    def polls_pending(self, task: str) -> bool:
        """Whether a cluster's worker has a poll (procrastinate ``task``) queued or running."""
        with self._each_statement() as conn:
            return inbox.polls_pending(conn, task)

    def claim_pages(self, urls: Sequence[str], now: datetime, stale_before: datetime, done_before: datetime) -> set[str]:
        """Claim a cluster's pages to fetch them (``pageclaims.claim``): those this caller holds."""
        with self._each_statement(writes=True) as conn:
            return pageclaims.claim(conn, urls, now, stale_before, done_before)

    def finish_pages(self, pages: Sequence[tuple[str, bytes]], now: datetime) -> None:
        """The claimed pages' extracted text, for the other workers: (url, data) each."""
        with self._each_statement(writes=True) as conn:
            pageclaims.finish(conn, pages, now)

    def release_pages(self, urls: Sequence[str]) -> None:
        """Unfinished claims given up (their fetch failed): the next worker to ask takes them."""
        with self._each_statement(writes=True) as conn:
            pageclaims.release(conn, urls)

    def claimed_pages(self, urls: Sequence[str]) -> dict[str, tuple[bool, bytes | None]]:
        """(done, data) of each page of ``urls`` that has a claim."""
        with self._each_statement() as conn:
            return pageclaims.claimed(conn, urls)

    def forget_pages(self, before: datetime) -> int:
        """Page claims made before ``before`` go; returns how many."""
        with self._begin() as conn:
            return pageclaims.forget(conn, before)

    # -- signatures and dedup snapshots -------------------------------------------

    def signature_schemes(self) -> set[str]:
        """The schemes of the first and the newest stored signature (all there is)."""
        with self._connect() as conn:
            return articles.signature_schemes(conn)

    def signatures(self, since: datetime | None = None, up_to: int | None = None, after: int | None = None) -> Iterator[StoredSignature]:
        """Stored signatures in insertion order: of articles published since ``since``, with ids
        up to ``up_to`` or after ``after`` (each filter only when given)."""
        with self._connect() as conn:
            yield from articles.stored_signatures(conn, since, up_to, after)

    def signature_chunks(self, size: int, since: datetime | None = None, up_to: int | None = None) -> Iterator[SignatureChunk]:
        """``signatures`` in chunks of ``size``, column by column (a restart reads a whole window:
        no per-row objects, publication times parsed in bulk). The next chunks are read in a
        thread while the caller takes in this one (``read_ahead``)."""
        return read_ahead(self._signature_chunks(size, since, up_to))

    def _signature_chunks(self, size: int, since: datetime | None, up_to: int | None) -> Iterator[SignatureChunk]:
        with self._connect() as conn:
            yield from articles.signature_chunks(conn, size, since, up_to)

    def retired_members(self, since: datetime) -> Iterator[tuple[int, int, datetime, datetime, int, bytes]]:
        """See ``articles.retired_members``."""
        with self._connect() as conn:
            yield from articles.retired_members(conn, since)

    def latest_snapshot(self, scheme: str) -> tuple[int, bytes] | None:
        """(last_article_id, data) of the newest dedup snapshot made with ``scheme``."""
        with self._connect() as conn:
            return articles.latest_snapshot(conn, scheme)

    def save_snapshot(self, scheme: str, last_article_id: int, data: bytes, now: datetime) -> None:
        """Keep only the newest snapshot."""
        with self._begin() as conn:
            articles.save_snapshot(conn, scheme, last_article_id, data, now)

    # -- the stories read model ---------------------------------------------------

    def late_members(self, since: datetime) -> Iterator[tuple[int, datetime]]:
        """(article, when it counts as reported) of the live stories' members whose date was not credible."""
        with self._connect() as conn:
            yield from articles.late_members(conn, since)

    # -- the stories read model ---------------------------------------------------

    def story_ids_between(self, start: datetime, end: datetime, activity: bool = True) -> list[int]:
        """Stories with activity in [start, end): a member published, or first seen, then (``activity``
        False: published then)."""
        with self._connect() as conn:
            return stories.story_ids_between(conn, start, end, activity)

    def load_stories(self, story_ids: Sequence[int], with_text: bool = False) -> list[Story]:
        """Stories with their variants, in the order of ``story_ids``."""
        if not story_ids:
            return []
        with self._connect() as conn:
            return stories.load_stories(conn, story_ids, with_text)

    def mark_read(self, story_ids: Sequence[int], now: datetime) -> int:
        """Mark the stories that exist read at ``now``; returns how many."""
        with self._begin() as conn:
            return stories.mark_read(conn, story_ids, now)

    def mark_unread(self, story_ids: Sequence[int]) -> int:
        """Forget the stories' read marks; returns how many exist."""
        with self._begin() as conn:
            return stories.mark_unread(conn, story_ids)

    def search(self, terms: Sequence[str], limit: int) -> list[SearchHit]:
        """Articles in stories matching every term (words or phrases), newest first."""
        with self._connect() as conn:
            return search.search(conn, terms, limit)

    def counts(self) -> dict[str, int]:
        """Rows in the feeds, articles, stories and story_members tables."""
        with self._connect() as conn:
            return stories.counts(conn)

    # -- a story's history ---------------------------------------------------------

    def timeline(self, story_id: int) -> list[TimelineEvent]:
        """The story's stored timeline: its members' arrivals and its events, in time order."""
        with self._connect() as conn:
            return timeline.timeline(conn, story_id)

    def revisions(self, story_id: int) -> list[Revision]:
        """The earlier versions of the story's articles, by article, oldest first."""
        with self._connect() as conn:
            return timeline.revisions(conn, story_id)

    # -- the reader's corrections -----------------------------------------------------

    def member_facts(self, story_ids: Sequence[int]) -> list[MemberFacts]:
        """Every member of these stories, as a correction needs it (``corrections.member_facts``)."""
        with self._connect() as conn:
            return corrections.member_facts(conn, story_ids)

    def apply_correction(self, kind: str, story_id: int, other_story_id: int | None, article_ids: Sequence[int],
                         groups: Sequence[Regrouped], now: datetime) -> Correction:
        """A split or a merge, written and recorded in one transaction (``corrections.apply_correction``)."""
        with self._begin() as conn:
            return corrections.apply_correction(conn, kind, story_id, other_story_id, article_ids, groups, now)

    def undo_correction(self, correction_id: int, groups: Sequence[Regrouped], now: datetime) -> Correction:
        """A correction undone: the stories as ``groups`` say, the correction marked, in one transaction."""
        with self._begin() as conn:
            return corrections.undo_correction(conn, correction_id, groups, now)

    def correction_queue(self) -> CorrectionQueueProtocol:
        """The corrections asked for while another process owns the dedup index (``correction_requests``)."""
        return corrections.CorrectionQueue(self)

    def corrections(self) -> list[Correction]:
        """Every correction, oldest first."""
        with self._connect() as conn:
            return corrections.all_corrections(conn)

    def merged_into(self, story_id: int) -> int | None:
        """Where a merge by the reader moved this story's members (``corrections.merged_into``)."""
        with self._connect() as conn:
            return corrections.merged_into(conn, story_id)


if TYPE_CHECKING:  # mypy checks that Store and its objects keep to the protocols
    from .interface import ReadProtocol, StoreProtocol, TransactionProtocol

    def _conforms(store: Store, reading: Reading, tx: Transaction) -> tuple[StoreProtocol, ReadProtocol, TransactionProtocol]:
        return store, reading, tx
