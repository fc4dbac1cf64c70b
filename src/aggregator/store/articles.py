"""Article queries: known entries, inserting articles and their signatures, and reading the
signatures back (row by row, or decoded in bulk column chunks for a restart), plus the dedup
index's snapshots.

Functions take the SQLAlchemy connection they run on; ``Store`` and ``Transaction`` own those.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, func, insert, or_, select, type_coerce, union, update
from sqlalchemy.engine import Connection

from ..models import Article, SignatureChunk
from .interface import ArticleVersion, LeadFacts, StoredEntry, StoredSignature
from .schema import UTCDateTime, article_revisions, articles, dedup_snapshots, feeds, signatures, stories, story_members

if TYPE_CHECKING:
    import numpy as np

# Statements run per feed or per article, built once: building one per call (and its cache key)
# cost 3-4x its execution (a polling round of 1,000 feeds runs a few thousand of them).
_KNOWN_GUIDS = select(articles.c.guid).where(articles.c.feed_id == bindparam("feed"), articles.c.guid.in_(bindparam("keys", expanding=True)))
_ENTRY_COLS = (articles.c.guid, articles.c.url, articles.c.id, articles.c.content_hash, articles.c.title, articles.c.from_page)
# (a UNION, not an OR: each half has its index, uq_articles_feed_guid and ix_articles_url)
_KNOWN_ENTRIES = union(
    select(*_ENTRY_COLS).where(articles.c.feed_id == bindparam("feed"), articles.c.guid.in_(bindparam("guids", expanding=True))),
    select(*_ENTRY_COLS).where(articles.c.feed_id == bindparam("feed"), articles.c.url.in_(bindparam("urls", expanding=True))),
)
_KNOWN_URLS = select(articles.c.url).where(articles.c.url.in_(bindparam("keys", expanding=True)))
_INSERT_ARTICLE = insert(articles)
_INSERT_SIGNATURE = insert(signatures)


def known_guids(conn: Connection, feed_id: int, guids: Iterable[str]) -> set[str]:
    """Which of these entry ids this feed already gave us."""
    guids = list(guids)
    found: set[str] = set()
    for i in range(0, len(guids), 500):
        found.update(r[0] for r in conn.execute(_KNOWN_GUIDS, {"feed": feed_id, "keys": guids[i : i + 500]}))
    return found


def known_entries(conn: Connection, feed_id: int, guids: Iterable[str], urls: Iterable[str]) -> list[StoredEntry]:
    """This feed's stored entries with one of these ids or (normalised) article URLs: one query
    (per 500 of each), what a poll compares the feed's entries with (``Aggregator._prepare``)."""
    guids, urls = list(guids), [u for u in urls if u]
    found: dict[int, StoredEntry] = {}
    for i in range(0, max(len(guids), len(urls), 1), 500):
        params = {"feed": feed_id, "guids": guids[i : i + 500], "urls": urls[i : i + 500]}
        for guid, url, article_id, content_hash, title, from_page in conn.execute(_KNOWN_ENTRIES, params):
            found[article_id] = StoredEntry(guid, url, int(article_id), content_hash, title, bool(from_page))
    return list(found.values())


def known_urls(conn: Connection, urls: Iterable[str]) -> set[str]:
    """Which of these (normalised) article URLs are stored, from any feed."""
    urls = [u for u in urls if u]
    found: set[str] = set()
    for i in range(0, len(urls), 500):
        found.update(r[0] for r in conn.execute(_KNOWN_URLS, {"keys": urls[i : i + 500]}))
    return found


def insert_article(conn: Connection, article: Article) -> int:
    """Store an article; returns its id."""
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
            reported_at=article.reported_at,
        ),
    )
    return new_id(result)


def url_owners(conn: Connection, urls: Iterable[str]) -> dict[str, tuple[int, str | None]]:
    """Of these (normalised) article URLs, those stored: (article id, the site of the feed that
    stored it: the site URL it gave, else its own address)."""
    urls = [u for u in urls if u]
    found: dict[str, tuple[int, str | None]] = {}
    query = (select(articles.c.url, articles.c.id, func.coalesce(feeds.c.site_url, feeds.c.url)).join(feeds, feeds.c.id == articles.c.feed_id)
             .where(articles.c.url.in_(bindparam("keys", expanding=True))).order_by(articles.c.id))
    for i in range(0, len(urls), 500):
        for url, article_id, site in conn.execute(query, {"keys": urls[i : i + 500]}):
            found.setdefault(url, (int(article_id), site))
    return found


def recredit_article(conn: Connection, article_id: int, feed_id: int, guid: str, source: str) -> None:
    """The article belongs to another feed (the one whose site serves it), as its entry ``guid``,
    under its outlet's name."""
    conn.execute(update(articles).where(articles.c.id == article_id).values(feed_id=feed_id, guid=guid, source=source))


def article_version(conn: Connection, article_id: int) -> ArticleVersion | None:
    """An article's current version: its title, text and hash, its story, and since when it is
    seen (its first sighting, or when its latest revision was replaced)."""
    last = select(func.max(article_revisions.c.replaced_at)).where(article_revisions.c.article_id == article_id).scalar_subquery()
    row = conn.execute(
        select(articles.c.id, story_members.c.story_id, articles.c.source, articles.c.title, articles.c.text, articles.c.content_hash,
               articles.c.first_seen_at, type_coerce(last, UTCDateTime()))
        .outerjoin(story_members, story_members.c.article_id == articles.c.id)
        .where(articles.c.id == article_id)
    ).first()
    if row is None:
        return None
    return ArticleVersion(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[7] or row[6])


def revise_article(conn: Connection, old: ArticleVersion, title: str, text: str, content_hash: str, from_page: bool, summary_html: str,
                   now: datetime) -> None:
    """Keep ``old`` as a revision replaced at ``now`` and give the article the new version (the
    search index follows by its triggers); the article's story counts as updated at ``now``."""
    conn.execute(insert(article_revisions), dict(article_id=old.article_id, seen_at=old.seen_at, replaced_at=now, title=old.title,
                                                 text=old.text, content_hash=old.content_hash))
    conn.execute(update(articles).where(articles.c.id == old.article_id).values(
        title=title, text=text, content_hash=content_hash, from_page=int(from_page), summary_html=summary_html or None))
    if old.story_id is not None:
        conn.execute(update(stories).where(stories.c.id == old.story_id).values(updated_at=now))
        # a story goes by its canonical's title: the latest one
        conn.execute(update(stories).where(stories.c.id == old.story_id, stories.c.canonical_article_id == old.article_id).values(title=title))


def lead_facts(conn: Connection, article_ids: Sequence[int]) -> dict[int, LeadFacts]:
    """What the canonical rule reads of these articles (to say why a canonical changed)."""
    query = select(articles.c.id, articles.c.source, articles.c.published_at, articles.c.reported_at, func.length(articles.c.text)).where(
        articles.c.id.in_(list(article_ids)))
    return {int(r[0]): LeadFacts(int(r[0]), r[1], r[2], r[3], int(r[4] or 0)) for r in conn.execute(query)}


def late_members(conn: Connection, since: datetime) -> Iterator[tuple[int, datetime]]:
    """(article, when it counts as reported) of the articles whose date was not credible, in the
    stories that have a member published or first seen since ``since`` (what a restart's window holds)."""
    live = (
        select(story_members.c.story_id)
        .join(articles, articles.c.id == story_members.c.article_id)
        .where(or_(articles.c.published_at >= since, articles.c.first_seen_at >= since))
        .distinct()
    )
    query = (
        select(articles.c.id, articles.c.reported_at)
        .join(story_members, story_members.c.article_id == articles.c.id)
        .where(articles.c.reported_at.is_not(None), story_members.c.story_id.in_(live))
    )
    for article_id, when in conn.execute(query):
        yield int(article_id), when


def insert_signature(conn: Connection, article_id: int, scheme: str, data: bytes) -> None:
    """Store an article's signature."""
    conn.execute(_INSERT_SIGNATURE, dict(article_id=article_id, scheme=scheme, data=data))


def signature_schemes(conn: Connection) -> set[str]:
    """The schemes of the first and the newest stored signature. The program never adds a
    signature of another scheme to a database (it refuses to start), so these two are all
    there is; reading every signature row to be sure took seconds at a million articles."""
    first = select(func.min(signatures.c.article_id)).scalar_subquery()
    last = select(func.max(signatures.c.article_id)).scalar_subquery()
    return {r[0] for r in conn.execute(select(signatures.c.scheme).where(signatures.c.article_id.in_([first, last])))}


def stored_signatures(conn: Connection, since: datetime | None, up_to: int | None, after: int | None) -> Iterator[StoredSignature]:
    """Stored signatures in insertion order: of articles published since ``since``, with ids
    up to ``up_to`` or after ``after`` (each filter only when given)."""
    with binary_results(conn):
        for row in conn.execution_options(yield_per=2000).execute(_signature_query(since, up_to, after)):
            yield StoredSignature(row.article_id, row.story_id, as_utc(row.published_at), row.data, row.source,
                                  as_utc(row.first_seen_at), int(row.text_length or 0))


def signature_chunks(conn: Connection, size: int, since: datetime | None, up_to: int | None) -> Iterator[SignatureChunk]:
    """``stored_signatures`` in chunks of ``size``, column by column (a restart reads a whole
    window: no per-row objects, publication times parsed in bulk)."""
    import numpy as np  # only a restart needs it

    with binary_results(conn):
        result = conn.execution_options(yield_per=size).execute(_signature_query(since, up_to, None))
        for part in result.partitions(size):
            ids, stories, published, data, sources, first_seen, lengths = zip(*part, strict=True)
            yield SignatureChunk(np.array(ids, dtype=np.int64), np.array(stories, dtype=np.int64), _epoch_seconds(published), data,
                                 sources, _epoch_seconds(first_seen), np.array([n or 0 for n in lengths], dtype=np.int32))


@contextmanager
def binary_results(conn: Connection) -> Iterator[None]:
    """Server-side cursors opened meanwhile on ``conn`` (``yield_per``) get PostgreSQL's results in
    binary form, where psycopg's default is text: a signature (bytea) then comes as its bytes, not
    as twice as many hex digits for the server to write and the driver to decode. (Reading 300,000
    signatures of 2.7 KB: 1.7 s instead of 3.8.) Other databases and drivers: nothing changes."""
    if conn.dialect.driver != "psycopg":
        yield
        return
    driver: Any = conn.connection.driver_connection
    before = driver.server_cursor_factory
    driver.server_cursor_factory = _binary_server_cursor()
    try:
        yield
    finally:
        driver.server_cursor_factory = before


@cache
def _binary_server_cursor() -> type[Any]:
    from psycopg import ServerCursor
    from psycopg.pq import Format

    class BinaryServerCursor(ServerCursor[Any]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.format = Format.BINARY

    return BinaryServerCursor


def retired_members(conn: Connection, since: datetime) -> Iterator[tuple[int, int, datetime, datetime, int, bytes]]:
    """(story, article, published, first seen, text length, signature) of the members published
    before ``since`` of the stories that have a member published since then: what the canonical
    rule still counts of a story whose older members left the dedup window."""
    live = (
        select(story_members.c.story_id)
        .join(articles, articles.c.id == story_members.c.article_id)
        .where(articles.c.published_at >= since)
        .distinct()
    )
    query = (
        select(story_members.c.story_id, articles.c.id, articles.c.published_at, articles.c.first_seen_at,
               func.length(articles.c.text), signatures.c.data)
        .join(articles, articles.c.id == story_members.c.article_id)
        .join(signatures, signatures.c.article_id == articles.c.id)
        .where(articles.c.published_at < since, story_members.c.story_id.in_(live))
        .order_by(articles.c.id)
    )
    with binary_results(conn):
        for row in conn.execution_options(yield_per=2000).execute(query):
            yield int(row[0]), int(row[1]), row[2], row[3], int(row[4] or 0), bytes(row[5])


def latest_snapshot(conn: Connection, scheme: str) -> tuple[int, bytes] | None:
    """(last_article_id, data) of the newest dedup snapshot made with ``scheme``."""
    row = conn.execute(
        select(dedup_snapshots.c.last_article_id, dedup_snapshots.c.data)
        .where(dedup_snapshots.c.scheme == scheme)
        .order_by(dedup_snapshots.c.last_article_id.desc())
        .limit(1)
    ).first()
    return (int(row[0]), bytes(row[1])) if row else None


def save_snapshot(conn: Connection, scheme: str, last_article_id: int, data: bytes, now: datetime) -> None:
    """Keep only the newest snapshot."""
    conn.execute(dedup_snapshots.delete())
    conn.execute(insert(dedup_snapshots).values(scheme=scheme, last_article_id=last_article_id, created_at=now, data=data))


def new_id(result: Any) -> int:
    """The primary key an INSERT's result assigned."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def stored_time(column: Any) -> Any:
    """A time column as the stored text, to be parsed by ``as_utc`` or ``_epoch_seconds``: SQLAlchemy's
    generic SQLite datetime parsing costs ~10 µs a row, which a restart pays for every article in
    the window, and a listing for every variant. (Other databases' drivers hand out datetimes.)"""
    return type_coerce(column, String).label(column.name)


def _signature_query(since: datetime | None, up_to: int | None, after: int | None) -> Any:
    published, first_seen = stored_time(articles.c.published_at), stored_time(articles.c.first_seen_at)
    # (text lengths: for the canonical rule; SQLite reads the text's overflow pages for them)
    query = (
        select(signatures.c.article_id, story_members.c.story_id, published, signatures.c.data, articles.c.source, first_seen,
               func.length(articles.c.text).label("text_length"))
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
    the epoch, equal to ``as_utc(v).timestamp()``."""
    import numpy as np

    try:
        micros = np.array(values, dtype="datetime64[us]").astype(np.int64)
    except (ValueError, TypeError):
        return np.array([as_utc(v).timestamp() for v in values], dtype=np.float64)
    return micros / 1e6


def as_utc(value: str | datetime) -> datetime:
    """A stored timestamp (SQLite text, or a driver's naive datetime) as an aware UTC datetime."""
    if isinstance(value, str):  # naive UTC as text: parsed aware at once (``replace`` costs as much as the parse)
        return datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=timezone.utc)
