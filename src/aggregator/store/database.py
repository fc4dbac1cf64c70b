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
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StorageError
from ..models import Article, FeedState, SignatureChunk, Story
from . import articles, feeds, stories
from .interface import FeedChange, Joined, StoredSignature
from .schema import migrate, sqlite_pragmas


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


class Transaction(Reading):
    """One atomic unit of work, lent by ``Store.transaction`` (see ``TransactionProtocol``)."""

    def insert_article(self, article: Article) -> int:
        """Store an article; returns its id."""
        return articles.insert_article(self._conn, article)

    def insert_signature(self, article_id: int, scheme: str, data: bytes) -> None:
        """Store an article's signature."""
        articles.insert_signature(self._conn, article_id, scheme, data)

    def create_story(self, article: Article, article_id: int, now: datetime) -> int:
        """A new story with this article as its canonical member; returns the story's id."""
        return stories.create_story(self._conn, article, article_id, now)

    def join_story(self, story_id: int, article_id: int, joined: Joined, now: datetime) -> None:
        """An article joins a story, as the dedup stage placed it."""
        stories.join_story(self._conn, story_id, article_id, joined, now)

    def apply_feed_updates(self, changes: Iterable[FeedChange]) -> None:
        """Feeds' new states, in order: (feed id, change, when, title, site URL), the last two only
        when the feed gave them. Consecutive updates setting the same columns run as one statement."""
        feeds.apply_feed_updates(self._conn, changes)


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
            migrate(self.engine, url)
        except SQLAlchemyError as exc:
            raise StorageError(f"{url}: cannot open database: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}") from None
        except ImportError as exc:  # a database URL whose driver is not installed
            raise StorageError(f"{url}: the database driver is not installed ({exc.name or exc}): pip install the driver your database_url names (e.g. psycopg for postgresql+psycopg)") from None

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
            raise StorageError(f"database error, transaction rolled back: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}") from exc

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        """Several reads on one connection. Like the one-shot reads below (and unlike
        ``transaction``), database errors are not translated."""
        with self.engine.connect() as conn:
            yield Reading(conn)

    # -- feeds ------------------------------------------------------------------

    def sync_feeds(self, configured: Sequence[tuple[str, str, int]], refresh: bool = True) -> None:
        """Insert feeds new to the config and (``refresh``) bring name/interval of known ones up to
        it; ``configured`` holds (config_url, name, interval_s). See ``feeds.sync_feeds``."""
        with self._begin() as conn:
            feeds.sync_feeds(conn, configured, refresh)

    def feeds(self, config_urls: Iterable[str] | None = None) -> list[FeedState]:
        """Stored feeds in id order (only those configured under ``config_urls``, when given)."""
        with self.engine.connect() as conn:
            return feeds.all_feeds(conn, config_urls)

    def feed(self, feed_id: int) -> FeedState:
        """One feed's stored state."""
        with self.engine.connect() as conn:
            return feeds.feed(conn, feed_id)

    def enable_feed(self, url: str, now: datetime) -> bool:
        """Clear a feed's disabled reason and errors, due now; False when no feed has this
        address (as configured, or where it moved)."""
        with self._begin() as conn:
            return feeds.enable_feed(conn, url, now)

    # -- signatures and dedup snapshots -------------------------------------------

    def signature_schemes(self) -> set[str]:
        """The schemes of the first and the newest stored signature (all there is)."""
        with self.engine.connect() as conn:
            return articles.signature_schemes(conn)

    def signatures(self, since: datetime | None = None, up_to: int | None = None, after: int | None = None) -> Iterator[StoredSignature]:
        """Stored signatures in insertion order: of articles published since ``since``, with ids
        up to ``up_to`` or after ``after`` (each filter only when given)."""
        with self.engine.connect() as conn:
            yield from articles.stored_signatures(conn, since, up_to, after)

    def signature_chunks(self, size: int, since: datetime | None = None, up_to: int | None = None) -> Iterator[SignatureChunk]:
        """``signatures`` in chunks of ``size``, column by column (a restart reads a whole window:
        no per-row objects, publication times parsed in bulk)."""
        with self.engine.connect() as conn:
            yield from articles.signature_chunks(conn, size, since, up_to)

    def retired_members(self, since: datetime) -> Iterator[tuple[int, int, datetime, datetime, int, bytes]]:
        """See ``articles.retired_members``."""
        with self.engine.connect() as conn:
            yield from articles.retired_members(conn, since)

    def latest_snapshot(self, scheme: str) -> tuple[int, bytes] | None:
        """(last_article_id, data) of the newest dedup snapshot made with ``scheme``."""
        with self.engine.connect() as conn:
            return articles.latest_snapshot(conn, scheme)

    def save_snapshot(self, scheme: str, last_article_id: int, data: bytes, now: datetime) -> None:
        """Keep only the newest snapshot."""
        with self._begin() as conn:
            articles.save_snapshot(conn, scheme, last_article_id, data, now)

    # -- the stories read model ---------------------------------------------------

    def story_ids_between(self, start: datetime, end: datetime) -> list[int]:
        """Stories with at least one member published in [start, end)."""
        with self.engine.connect() as conn:
            return stories.story_ids_between(conn, start, end)

    def load_stories(self, story_ids: Sequence[int], with_text: bool = False) -> list[Story]:
        """Stories with their variants, in the order of ``story_ids``."""
        if not story_ids:
            return []
        with self.engine.connect() as conn:
            return stories.load_stories(conn, story_ids, with_text)

    def counts(self) -> dict[str, int]:
        """Rows in the feeds, articles, stories and story_members tables."""
        with self.engine.connect() as conn:
            return stories.counts(conn)


if TYPE_CHECKING:  # mypy checks that Store and its objects keep to the protocols
    from .interface import ReadProtocol, StoreProtocol, TransactionProtocol

    def _conforms(store: Store, reading: Reading, tx: Transaction) -> tuple[StoreProtocol, ReadProtocol, TransactionProtocol]:
        return store, reading, tx
