"""The database's shape: tables, the UTC datetime type, SQLite pragmas and recorded migrations.

A new database is created at ``SCHEMA_VERSION`` from ``metadata``; an older one is brought up
to date by ``MIGRATIONS[v]`` for each version v it is behind (v -> v + 1). Never edit a
released step: append one, and change ``metadata`` to match.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    DDL,
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
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.types import TypeDecorator

from ..errors import StorageError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 10
MIGRATE_ATTEMPTS = 5
POSTGRES_DOCUMENT = "(a.title || ' ' || a.text)"  # what PostgreSQL's full-text search reads of an article (aliased ``a``)
POSTGRES_SEARCH_INDEX = ("CREATE INDEX IF NOT EXISTS ix_articles_search ON articles USING gin"
                         " (to_tsvector('simple'::regconfig, (title || ' ' || text)))")
REPORTED_INDEX = "CREATE INDEX IF NOT EXISTS ix_articles_reported ON articles (reported_at) WHERE reported_at IS NOT NULL"
MIGRATION_LOCK_KEY = 0x61676772_6d696772  # "aggrmigr": PostgreSQL's advisory lock on the schema's migrations


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
    Column("named", Integer, nullable=False, server_default=text("1")),  # 0: not named by the config; ``name`` follows the feed's title
    Column("title", Text),
    Column("site_url", Text),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("interval_s", Integer, nullable=False),  # as configured (the default interval where none is)
    Column("interval_set", Integer, nullable=False, server_default=text("0")),  # 1: the config sets it, and it is the one used
    Column("learned_interval_s", Integer),  # from the feed's posting rate and its <ttl>/Cache-Control hints
    Column("next_poll_at", UTCDateTime),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("disabled_reason", Text),
    Index("ix_feeds_next_poll", "next_poll_at"),  # the feeds due (a cluster's scheduler asks every 2 s)
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
    # When the feed's date is not credible (earlier than the first sighting by more than the feed's
    # polling gap plus a margin): the time it counts as reported, its first sighting. NULL: its date.
    Column("reported_at", UTCDateTime),
    UniqueConstraint("feed_id", "guid", name="uq_articles_feed_guid"),
    Index("ix_articles_url", "url"),
    Index("ix_articles_published", "published_at"),
    Index("ix_articles_first_seen", "first_seen_at"),  # listings by activity (a story first seen in a day)
    # Partial: the few a restart reads. (Written as DDL, not ``postgresql_where``: naming a dialect's
    # option imports that dialect, 30 ms on every command, SQLite ones too.)
    Index("ix_articles_reported", "reported_at", sqlite_where=text("reported_at IS NOT NULL")).ddl_if(dialect="sqlite"),  # the few a restart reads
)

event.listen(articles, "after_create", DDL(REPORTED_INDEX).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]
event.listen(articles, "after_create", DDL(POSTGRES_SEARCH_INDEX).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]

signatures = Table(
    "signatures",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("scheme", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
# PostgreSQL: a signature (2.7 KB) stays in its row, where by default it would be moved out to the
# TOAST table (beyond 2 KB): a restart reads 300,000 of them, and each was a second lookup.
SIGNATURES_INLINE = "ALTER TABLE signatures ALTER COLUMN data SET STORAGE MAIN"
event.listen(signatures, "after_create", DDL(SIGNATURES_INLINE).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]

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

story_reads = Table(  # the one reader's read marks
    "story_reads",
    metadata,
    Column("story_id", Integer, ForeignKey("stories.id"), primary_key=True),
    Column("read_at", UTCDateTime, nullable=False),
)

article_revisions = Table(  # the versions an article had before its feed changed it (the article row holds the latest)
    "article_revisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),  # when this version was first seen
    Column("replaced_at", UTCDateTime, nullable=False),  # when the next version replaced it
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Index("ix_revisions_article", "article_id"),
)

story_events = Table(  # a story's timeline beyond its members' arrivals (story_members.joined_at): what changed, when, why
    "story_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # canonical, revised, split, merged, undone, ...
    Column("article_id", Integer, ForeignKey("articles.id")),
    Column("detail", Text, nullable=False, server_default=text("''")),  # one sentence: what changed and why
    Index("ix_events_story", "story_id"),
)

corrections = Table(  # the reader's splits and merges: constraints later articles respect, undoable
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # split | merge
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),  # split: the story split; merge: the one kept
    Column("other_story_id", Integer, ForeignKey("stories.id"), nullable=False),  # split: the new story; merge: the one merged in
    Column("article_ids", Text, nullable=False),  # JSON list: the articles moved
    Column("created_at", UTCDateTime, nullable=False),
    Column("undone_at", UTCDateTime),
)

correction_requests = Table(  # corrections asked for while another process owns the dedup index (a daemon): it applies them
    "correction_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # split | merge | undo
    Column("story_id", Integer),  # split: the story to split; merge: the one kept (no foreign keys: a request names, it does not hold)
    Column("other_story_id", Integer),  # merge: the story merged in
    Column("article_ids", Text, nullable=False, server_default=text("'[]'")),  # split: JSON list of the articles to move
    Column("correction_id", Integer),  # undo: the correction to undo; once done: the correction made (or undone)
    Column("requested_at", UTCDateTime, nullable=False),
    Column("status", String(8), nullable=False, server_default=text("'pending'")),  # pending | done | failed
    Column("reason", Text),  # failed: why, in one line
    Column("finished_at", UTCDateTime),
    Index("ix_correction_requests_status", "status"),
)

inbox = Table(  # feeds' answers fetched by workers (``aggregator worker``), waiting for the clusterer to store them, oldest first
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("articles", Integer, nullable=False),  # how many new or changed entries it carries
    Column("data", LargeBinary, nullable=False),  # the feed's answer, ready to store (``cluster.codec``)
    Index("ix_inbox_feed", "feed_id"),
)

page_claims = Table(  # a cluster's article pages: the worker that claims one fetches it, the others wait for its text
    "page_claims",
    metadata,
    Column("url", Text, primary_key=True),  # normalised
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),  # NULL: being fetched
    Column("data", LargeBinary),  # the extracted page (``cluster.pages.pack``: JSON, zlib'd; ``null``: no article there)
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


# Full-text search over articles (SQLite FTS5; other databases search with LIKE). An external-
# content index: the text is stored once, in ``articles``; triggers keep the index in the same
# transaction as the rows it indexes.
SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(title, text, content='articles', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_insert AFTER INSERT ON articles BEGIN"
    " INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_delete AFTER DELETE ON articles BEGIN"
    " INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN"
    " INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);"
    " INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
)


def has_search_index(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _create_search_index(conn: Connection, rebuild: bool) -> None:
    if not has_search_index(conn):
        return
    for statement in SEARCH_DDL:
        conn.execute(text(statement))
    if rebuild:  # an existing database: index the articles it holds
        conn.execute(text("INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')"))


def _add_learned_interval(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE feeds ADD COLUMN learned_interval_s INTEGER"))


def _add_dedup_snapshots(conn: Connection) -> None:
    dedup_snapshots.create(conn)


def _add_summary_html(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE articles ADD COLUMN summary_html TEXT"))


def _add_reading(conn: Connection) -> None:
    """v5: search, read marks, and whether the config names a feed and sets its interval."""
    conn.execute(text("ALTER TABLE feeds ADD COLUMN named INTEGER NOT NULL DEFAULT 1"))
    conn.execute(text("ALTER TABLE feeds ADD COLUMN interval_set INTEGER NOT NULL DEFAULT 0"))
    story_reads.create(conn)
    _create_search_index(conn, rebuild=True)


def _add_reported(conn: Connection) -> None:
    """v6: when an article counts as reported where its date is not credible; listing by first sighting."""
    conn.execute(text("ALTER TABLE articles ADD COLUMN reported_at DATETIME"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_articles_first_seen ON articles (first_seen_at)"))
    conn.execute(text(REPORTED_INDEX))


def _add_story_intelligence(conn: Connection) -> None:
    """v7: article revisions, story timelines, the reader's corrections."""
    article_revisions.create(conn)
    story_events.create(conn)
    corrections.create(conn)


def _add_correction_requests(conn: Connection) -> None:
    """v8: corrections requested while a daemon runs, for it to apply."""
    correction_requests.create(conn)


def _add_inbox(conn: Connection) -> None:
    """v9: the answers workers fetched, waiting for the clusterer; the pages they share; search on PostgreSQL."""
    inbox.create(conn)
    page_claims.create(conn)
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_feeds_next_poll ON feeds (next_poll_at)"))
    if conn.dialect.name == "postgresql":
        conn.execute(text(POSTGRES_SEARCH_INDEX))


def _inline_signatures(conn: Connection) -> None:
    """v10: PostgreSQL keeps each signature in its row (``SIGNATURES_INLINE``), not TOASTed beside it:
    a restart reads the window in about half the time. Only rows written from now on are so placed
    (no table rewrite on upgrade); those written before leave the window as it slides."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(SIGNATURES_INLINE))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _add_learned_interval,
    2: _add_dedup_snapshots,
    3: _add_summary_html,
    4: _add_reading,
    5: _add_reported,
    6: _add_story_intelligence,
    7: _add_correction_requests,
    8: _add_inbox,
    9: _inline_signatures,
}


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Set on every new SQLite connection (an engine ``connect`` event)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")  # first: switching a new file to WAL can meet a busy lock
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def migrate(engine: Engine, url: str) -> None:
    """Create or bring the schema up to ``SCHEMA_VERSION``, retrying a lost creation race."""
    for attempt in range(MIGRATE_ATTEMPTS):
        try:
            _migrate(engine, url)
            return
        except OperationalError as exc:
            # Two processes creating one new database at once: the loser's CREATE TABLE finds
            # the winner's table, or its snapshot went stale under the winner's commit (SQLite
            # answers "locked" at once then, without waiting). Its transaction rolled back; the
            # next attempt sees the schema.
            message = str(exc.orig)
            if not ("already exists" in message or "locked" in message) or attempt == MIGRATE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _migrate(engine: Engine, url: str) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # processes opening one database at once migrate it one after the other
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        meta.create(conn, checkfirst=True)
        row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StorageError(f"{url}: database schema v{version} is newer than this program (v{SCHEMA_VERSION})")
        if version == 0:
            metadata.create_all(conn)
            _create_search_index(conn, rebuild=False)
        for step in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
            MIGRATIONS[step](conn)
            log.info("database schema migrated from v%d to v%d", step, step + 1)
        if version != SCHEMA_VERSION:
            _set_meta(conn, "schema_version", str(SCHEMA_VERSION))
            log.info("database schema at v%d", SCHEMA_VERSION)


def get_meta(conn: Connection, key: str) -> str | None:
    row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
    return row[0] if row else None


def set_meta(conn: Connection, key: str, value: str) -> None:
    _set_meta(conn, key, value)


def _set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(meta).values(key=key, value=value))
