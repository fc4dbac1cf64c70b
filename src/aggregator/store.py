"""The database: schema, migrations, transactions and queries. The only module that writes SQL.

SQLite (WAL) by default, through SQLAlchemy Core so that PostgreSQL can follow.
Times are stored as naive UTC and handed out as aware UTC datetimes.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from .errors import StorageError
from .models import Article, FeedState, FeedUpdate, MemberKind, SignatureChunk, Story, Variant

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
MIGRATE_ATTEMPTS = 5


def _signature_query(since: datetime | None, up_to: int | None, after: int | None) -> Any:
    # published_at as the stored text, parsed by the callers: SQLAlchemy's generic SQLite datetime
    # parsing costs ~10 µs a row, which a restart pays for every article in the window.
    published = type_coerce(articles.c.published_at, String).label("published_at")
    query = (
        select(signatures.c.article_id, story_members.c.story_id, published, signatures.c.data, articles.c.source)
        .join(articles, articles.c.id == signatures.c.article_id)
        .join(story_members, story_members.c.article_id == signatures.c.article_id)
        .order_by(signatures.c.article_id)
    )
    if since is not None:
        # The lower id bound lets SQLite walk signatures in id order (no temporary sort of blobs).
        first = select(func.min(articles.c.id)).where(articles.c.published_at >= since).scalar_subquery()
        query = query.where(articles.c.published_at >= since, signatures.c.article_id >= first)
    if up_to is not None:
        query = query.where(signatures.c.article_id <= up_to)
    if after is not None:
        query = query.where(signatures.c.article_id > after)
    return query


def _epoch_seconds(values: Sequence[str | datetime]) -> np.ndarray:
    """Stored timestamps (naive UTC: SQLite text, or a driver's datetimes) as float seconds since
    the epoch, equal to ``_as_utc(v).timestamp()``."""
    try:
        micros = np.array(values, dtype="datetime64[us]").astype(np.int64)
    except (ValueError, TypeError):
        return np.array([_as_utc(v).timestamp() for v in values], dtype=np.float64)
    return micros / 1e6


def _as_utc(value: str | datetime) -> datetime:
    """A stored timestamp (SQLite text, or a driver's naive datetime) as an aware UTC datetime."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC on disk."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("config_url", Text, nullable=False, unique=True),  # as written in the config
    Column("url", Text, nullable=False),  # where we fetch now (moves on 301/308)
    Column("name", Text, nullable=False),
    Column("title", Text),
    Column("site_url", Text),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("interval_s", Integer, nullable=False),  # as configured
    Column("learned_interval_s", Integer),  # from the feed's posting rate and its <ttl>/Cache-Control hints
    Column("next_poll_at", UTCDateTime),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("disabled_reason", Text),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id"), nullable=False),
    Column("guid", Text, nullable=False),
    Column("url", Text),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("lang", String(16)),
    Column("content_hash", String(64), nullable=False),
    Column("from_page", Integer, nullable=False, default=0),
    Column("summary_html", Text),  # the feed's summary, untrusted: sanitized when rendered
    UniqueConstraint("feed_id", "guid", name="uq_articles_feed_guid"),
    Index("ix_articles_url", "url"),
    Index("ix_articles_published", "published_at"),
)

signatures = Table(
    "signatures",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("scheme", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("canonical_article_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("first_reported_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_stories_first_reported", "first_reported_at"),
)

story_members = Table(
    "story_members",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),  # one story per article
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("similarity", Float, nullable=False),
    Column("joined_at", UTCDateTime, nullable=False),
    Index("ix_members_story", "story_id"),
)


dedup_snapshots = Table(
    "dedup_snapshots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scheme", Text, nullable=False),
    Column("last_article_id", Integer, nullable=False),  # every article up to here is in the snapshot
    Column("created_at", UTCDateTime, nullable=False),
    Column("data", LargeBinary, nullable=False),
)


# Statements run per feed or per article, built once: building one per call (and its cache key)
# cost 3-4x its execution (a polling round of 1,000 feeds runs a few thousand of them).
_KNOWN_GUIDS = select(articles.c.guid).where(articles.c.feed_id == bindparam("feed"), articles.c.guid.in_(bindparam("keys", expanding=True)))
_KNOWN_URLS = select(articles.c.url).where(articles.c.url.in_(bindparam("keys", expanding=True)))
_UPDATE_FEED = update(feeds).where(feeds.c.id == bindparam("feed_id_"))
_INSERT_ARTICLE = insert(articles)
_INSERT_SIGNATURE = insert(signatures)
_SIGNATURE = select(signatures.c.data).where(signatures.c.article_id == bindparam("article_id"))
_INSERT_STORY = insert(stories)
_INSERT_MEMBER = insert(story_members)
_MEMBERS = (
    select(articles.c.id, articles.c.published_at, articles.c.first_seen_at, func.length(articles.c.text),
           story_members.c.kind, articles.c.source, articles.c.title)
    .join(story_members, story_members.c.article_id == articles.c.id)
    .where(story_members.c.story_id == bindparam("story_id"))
    .order_by(articles.c.id)
)
_UPDATE_STORY = update(stories).where(stories.c.id == bindparam("story_id_"))
_SET_MEMBER = update(story_members).where(story_members.c.article_id == bindparam("article_id_"))


def _add_learned_interval(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE feeds ADD COLUMN learned_interval_s INTEGER"))


# A new database is created at SCHEMA_VERSION from ``metadata``; an older one is brought up
# to date by MIGRATIONS[v] for each version v it is behind (v -> v + 1). Never edit a
# released step: append one, and change ``metadata`` to match.
def _add_dedup_snapshots(conn: Connection) -> None:
    dedup_snapshots.create(conn)


def _add_summary_html(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE articles ADD COLUMN summary_html TEXT"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _add_learned_interval,
    2: _add_dedup_snapshots,
    3: _add_summary_html,
}


@dataclass(frozen=True)
class Member:
    """A story member with what the canonical rule needs."""

    article_id: int
    published_at: datetime
    first_seen_at: datetime
    text_length: int
    kind: MemberKind
    source: str
    title: str


@dataclass(frozen=True)
class StoredSignature:
    article_id: int
    story_id: int
    published_at: datetime
    data: bytes
    source: str


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """Feeds, articles, signatures and stories in one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            directory = Path(url.removeprefix("sqlite:///")).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"{directory}: cannot create the storage directory (settings.storage): {exc.strerror or exc}") from None
        try:
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            for attempt in range(MIGRATE_ATTEMPTS):
                try:
                    self._migrate()
                    break
                except OperationalError as exc:
                    # Two processes creating one new database at once: the loser's CREATE TABLE finds
                    # the winner's table. Its transaction rolled back; the next attempt sees the schema.
                    if "already exists" not in str(exc.orig) or attempt == MIGRATE_ATTEMPTS - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1))
        except SQLAlchemyError as exc:
            raise StorageError(f"{url}: cannot open database: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}") from None
        except ImportError as exc:  # a database URL whose driver is not installed
            raise StorageError(f"{url}: the database driver is not installed ({exc.name or exc}): pip install the driver your database_url names (e.g. psycopg for postgresql+psycopg)") from None

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            meta.create(conn, checkfirst=True)
            row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(f"{self.url}: database schema v{version} is newer than this program (v{SCHEMA_VERSION})")
            if version == 0:
                metadata.create_all(conn)
            for step in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
                MIGRATIONS[step](conn)
                log.info("database schema migrated from v%d to v%d", step, step + 1)
            if version != SCHEMA_VERSION:
                self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))
                log.info("database schema at v%d", SCHEMA_VERSION)

    @staticmethod
    def _set_meta(conn: Connection, key: str, value: str) -> None:
        if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
            conn.execute(insert(meta).values(key=key, value=value))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work: everything inside commits together or not at all."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"database error, transaction rolled back: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}") from exc

    # -- feeds ------------------------------------------------------------------

    def sync_feeds(self, configured: Sequence[tuple[str, str, int]], refresh: bool = True) -> None:
        """Insert feeds new to the config and (``refresh``) bring name/interval of known ones up to it.

        ``configured`` holds (config_url, name, interval_s). Feeds no longer
        configured stay in the database (their articles are history) but are
        not returned by ``feeds(config_urls=...)`` for the current config.
        A renamed feed's articles take the new name (unless an item named its
        own outlet): one outlet is one source, before and after the rename.
        """
        with self.transaction() as conn:
            known = {r.config_url: r for r in conn.execute(select(feeds.c.id, feeds.c.config_url, feeds.c.name, feeds.c.interval_s))}
            for config_url, name, interval_s in configured:
                row = known.get(config_url)
                if row is None:
                    conn.execute(
                        insert(feeds).values(config_url=config_url, url=config_url, name=name, interval_s=interval_s, error_count=0)
                    )
                elif refresh and (row.name, row.interval_s) != (name, interval_s):
                    conn.execute(update(feeds).where(feeds.c.id == row.id).values(name=name, interval_s=interval_s))
                    if row.name != name:
                        conn.execute(update(articles).where(articles.c.feed_id == row.id, articles.c.source == row.name).values(source=name))

    def feeds(self, config_urls: Iterable[str] | None = None) -> list[FeedState]:
        query = select(feeds).order_by(feeds.c.id)
        if config_urls is not None:
            query = query.where(feeds.c.config_url.in_(list(config_urls)))
        with self.engine.connect() as conn:
            return [_feed_state(r) for r in conn.execute(query)]

    def feed(self, feed_id: int) -> FeedState:
        with self.engine.connect() as conn:
            row = conn.execute(select(feeds).where(feeds.c.id == feed_id)).first()
        if row is None:
            raise StorageError(f"no feed with id {feed_id}")
        return _feed_state(row)

    def enable_feed(self, url: str, now: datetime) -> bool:
        """Clear a feed's disabled reason and errors, due now; False when no feed has this
        address (as configured, or where it moved)."""
        with self.transaction() as conn:
            result = conn.execute(
                update(feeds).where((feeds.c.config_url == url) | (feeds.c.url == url))
                .values(disabled_reason=None, error_count=0, last_error=None, next_poll_at=now)
            )
        return bool(result.rowcount)

    def apply_feed_updates(self, conn: Connection, changes: Iterable[tuple[int, FeedUpdate, datetime, str | None, str | None]]) -> None:
        """Feeds' new states, in order: (feed id, change, when, title, site URL), the last two only
        when the feed gave them. Consecutive updates setting the same columns run as one statement."""
        rows = ({"feed_id_": feed_id, **_feed_values(change, now, title, site_url)} for feed_id, change, now, title, site_url in changes)
        for _, run in itertools.groupby(rows, key=_columns):
            # SET from the parameters' keys, the id as a bound parameter: no statement built from literals
            conn.execute(_UPDATE_FEED, list(run))

    # -- articles ---------------------------------------------------------------

    def known_guids(self, conn: Connection, feed_id: int, guids: Iterable[str]) -> set[str]:
        """Which of these entry ids this feed already gave us."""
        guids = list(guids)
        found: set[str] = set()
        for i in range(0, len(guids), 500):
            found.update(r[0] for r in conn.execute(_KNOWN_GUIDS, {"feed": feed_id, "keys": guids[i : i + 500]}))
        return found

    def known_urls(self, conn: Connection, urls: Iterable[str]) -> set[str]:
        """Which of these (normalised) article URLs are stored, from any feed."""
        urls = [u for u in urls if u]
        found: set[str] = set()
        for i in range(0, len(urls), 500):
            found.update(r[0] for r in conn.execute(_KNOWN_URLS, {"keys": urls[i : i + 500]}))
        return found

    def connect(self) -> Connection:
        """A read connection (use as a context manager)."""
        return self.engine.connect()

    def insert_article(self, conn: Connection, article: Article) -> int:
        # Values as parameters, not .values(...): a statement with literal values costs ~4x more to prepare.
        result = conn.execute(
            _INSERT_ARTICLE,
            dict(
                feed_id=article.feed_id,
                guid=article.guid,
                url=article.url,
                title=article.title,
                text=article.text,
                source=article.source,
                published_at=article.published_at,
                first_seen_at=article.first_seen_at,
                lang=article.lang,
                content_hash=article.content_hash,
                from_page=int(article.from_page),
                summary_html=article.summary_html or None,
            ),
        )
        return _new_id(result)

    def insert_signature(self, conn: Connection, article_id: int, scheme: str, data: bytes) -> None:
        conn.execute(_INSERT_SIGNATURE, dict(article_id=article_id, scheme=scheme, data=data))

    def signature_schemes(self) -> set[str]:
        """The schemes of the first and the newest stored signature. The program never adds a
        signature of another scheme to a database (it refuses to start), so these two are all
        there is; reading every signature row to be sure took seconds at a million articles."""
        first = select(func.min(signatures.c.article_id)).scalar_subquery()
        last = select(func.max(signatures.c.article_id)).scalar_subquery()
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(signatures.c.scheme).where(signatures.c.article_id.in_([first, last])))}

    def signatures(self, since: datetime | None = None, up_to: int | None = None, after: int | None = None) -> Iterator[StoredSignature]:
        """Stored signatures in insertion order: of articles published since ``since``, with ids
        up to ``up_to`` or after ``after`` (each filter only when given)."""
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(_signature_query(since, up_to, after)):
                yield StoredSignature(row.article_id, row.story_id, _as_utc(row.published_at), row.data, row.source)

    def signature_chunks(self, size: int, since: datetime | None = None, up_to: int | None = None) -> Iterator[SignatureChunk]:
        """``signatures`` in chunks of ``size``, column by column (a restart reads a whole window:
        no per-row objects, publication times parsed in bulk)."""
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=size).execute(_signature_query(since, up_to, None))
            for part in result.partitions(size):
                ids, stories, published, data, sources = zip(*part, strict=True)
                yield SignatureChunk(np.array(ids, dtype=np.int64), np.array(stories, dtype=np.int64),
                                     _epoch_seconds(published), data, sources)

    def latest_snapshot(self, scheme: str) -> tuple[int, bytes] | None:
        """(last_article_id, data) of the newest dedup snapshot made with ``scheme``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(dedup_snapshots.c.last_article_id, dedup_snapshots.c.data)
                .where(dedup_snapshots.c.scheme == scheme)
                .order_by(dedup_snapshots.c.last_article_id.desc())
                .limit(1)
            ).first()
        return (int(row[0]), bytes(row[1])) if row else None

    def save_snapshot(self, scheme: str, last_article_id: int, data: bytes, now: datetime) -> None:
        """Keep only the newest snapshot."""
        with self.transaction() as conn:
            conn.execute(dedup_snapshots.delete())
            conn.execute(insert(dedup_snapshots).values(scheme=scheme, last_article_id=last_article_id, created_at=now, data=data))

    def signature(self, conn: Connection, article_id: int) -> bytes | None:
        row = conn.execute(_SIGNATURE, {"article_id": article_id}).first()
        return row[0] if row else None

    # -- stories ----------------------------------------------------------------

    def create_story(self, conn: Connection, article: Article, article_id: int, now: datetime) -> int:
        result = conn.execute(
            _INSERT_STORY,
            dict(canonical_article_id=article_id, title=article.title, first_seen_at=now, first_reported_at=article.published_at, updated_at=now),
        )
        story_id = _new_id(result)
        conn.execute(_INSERT_MEMBER, dict(story_id=story_id, article_id=article_id, kind="canonical", similarity=1.0, joined_at=now))
        return story_id

    def add_member(self, conn: Connection, story_id: int, article_id: int, kind: MemberKind, similarity: float, now: datetime) -> None:
        conn.execute(_INSERT_MEMBER, dict(story_id=story_id, article_id=article_id, kind=kind, similarity=similarity, joined_at=now))

    def members(self, conn: Connection, story_id: int) -> list[Member]:
        rows = conn.execute(_MEMBERS, {"story_id": story_id})
        return [Member(r[0], r[1], r[2], int(r[3] or 0), r[4], r[5], r[6]) for r in rows]

    def update_story(
        self, conn: Connection, story_id: int, canonical: Member, first_reported_at: datetime, now: datetime
    ) -> None:
        conn.execute(
            _UPDATE_STORY,
            dict(story_id_=story_id, canonical_article_id=canonical.article_id, title=canonical.title,
                 first_reported_at=first_reported_at, updated_at=now),
        )

    def set_member(self, conn: Connection, article_id: int, kind: MemberKind, similarity: float) -> None:
        conn.execute(
            _SET_MEMBER,
            dict(article_id_=article_id, kind=kind, similarity=similarity),
        )

    def story_ids_between(self, start: datetime, end: datetime) -> list[int]:
        """Stories with at least one member published in [start, end)."""
        query = (
            select(story_members.c.story_id)
            .join(articles, articles.c.id == story_members.c.article_id)
            .where(articles.c.published_at >= start, articles.c.published_at < end)
            .distinct()
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def load_stories(self, story_ids: Sequence[int], with_text: bool = False) -> list[Story]:
        """Stories with their variants, in the order of ``story_ids``."""
        if not story_ids:
            return []
        by_story: dict[int, list[Variant]] = {i: [] for i in story_ids}
        heads: dict[int, Any] = {}
        with self.engine.connect() as conn:
            for chunk_start in range(0, len(story_ids), 500):
                chunk = list(story_ids[chunk_start : chunk_start + 500])
                for row in conn.execute(select(stories).where(stories.c.id.in_(chunk))):
                    heads[row.id] = row
                cols = [
                    story_members.c.story_id, story_members.c.article_id, story_members.c.kind, story_members.c.similarity,
                    articles.c.source, articles.c.title, articles.c.url, articles.c.published_at, articles.c.first_seen_at,
                ]
                if with_text:
                    cols += [articles.c.text, articles.c.summary_html]
                query = (
                    select(*cols)
                    .join(articles, articles.c.id == story_members.c.article_id)
                    .where(story_members.c.story_id.in_(chunk))
                    .order_by(articles.c.published_at, articles.c.id)
                )
                for r in conn.execute(query):
                    by_story[r.story_id].append(
                        Variant(
                            article_id=r.article_id, story_id=r.story_id, kind=r.kind, similarity=r.similarity,
                            source=r.source, title=r.title, url=r.url, published_at=r.published_at,
                            first_seen_at=r.first_seen_at, text=r.text if with_text else "",
                            summary_html=(r.summary_html or "") if with_text else "",
                        )
                    )
        result = []
        for sid in story_ids:
            head = heads.get(sid)
            if head is None or not by_story[sid]:
                continue
            variants = tuple(by_story[sid])
            first = min(variants, key=lambda v: (v.published_at, v.article_id))
            result.append(
                Story(
                    id=sid, title=head.title, canonical_article_id=head.canonical_article_id,
                    first_reported_at=head.first_reported_at, first_source=first.source,
                    updated_at=head.updated_at, variants=variants,
                )
            )
        return result

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (("feeds", feeds), ("articles", articles), ("stories", stories), ("story_members", story_members))
            }


def _feed_values(change: FeedUpdate, now: datetime, title: str | None, site_url: str | None) -> dict[str, Any]:
    """The feed columns an update sets."""
    values: dict[str, Any] = {
        "next_poll_at": change.next_poll_at,
        "error_count": change.error_count,
        "etag": change.etag,
        "last_modified": change.last_modified,
        "learned_interval_s": change.learned_interval_s,
    }
    if change.success:
        values.update(last_success_at=now, last_error=None)
    else:
        values.update(last_error=change.last_error, last_error_at=now)
    if change.disabled_reason:
        values["disabled_reason"] = change.disabled_reason
    if change.new_url:
        values["url"] = change.new_url
    if title:
        values["title"] = title
    if site_url:
        values["site_url"] = site_url
    return values


def _columns(values: dict[str, Any]) -> tuple[str, ...]:
    return tuple(values)


def _feed_state(row: Any) -> FeedState:
    return FeedState(
        id=row.id, url=row.url, name=row.name, interval_s=row.interval_s, etag=row.etag, last_modified=row.last_modified,
        next_poll_at=row.next_poll_at, error_count=row.error_count or 0, last_error=row.last_error,
        last_error_at=row.last_error_at, last_success_at=row.last_success_at, disabled_reason=row.disabled_reason,
        title=row.title, learned_interval_s=row.learned_interval_s,
    )


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
