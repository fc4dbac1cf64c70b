"""A cluster's shared article pages (``page_claims``): the first worker to ask for a page claims it
and leaves its extracted text; the others read it. A claim whose worker died goes stale and may be
taken over; a page done long enough ago may be claimed (fetched) again, for the revisions a later
round looks for. PostgreSQL only: the claim is an upsert that only one worker wins.

Functions take the SQLAlchemy connection they run on; ``Store`` owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import TextClause, bindparam, delete, text
from sqlalchemy.engine import Connection

from .schema import UTCDateTime, page_claims

# The statements take the pages as arrays (unnest), so their text is the same however many pages a
# group holds: compiled once, prepared once by the server (a statement built per group's size was
# compiled anew each time and cost the workers more than its execution).


@cache
def _statements() -> dict[str, TextClause]:
    times = [bindparam(name, type_=UTCDateTime) for name in ("now", "stale_before", "done_before")]
    return {
        "claim": text(
            "INSERT INTO page_claims (url, claimed_at, done_at, data)"
            " SELECT u, :now, NULL, NULL FROM unnest(CAST(:urls AS text[])) AS u ORDER BY u"
            " ON CONFLICT (url) DO UPDATE SET claimed_at = excluded.claimed_at, done_at = NULL, data = NULL"
            " WHERE (page_claims.done_at IS NULL AND page_claims.claimed_at < :stale_before) OR page_claims.done_at < :done_before"
            " RETURNING url"
        ).bindparams(*times),
        "finish": text(
            "UPDATE page_claims SET done_at = :now, data = d.data"
            " FROM unnest(CAST(:urls AS text[]), CAST(:datas AS bytea[])) AS d(url, data) WHERE page_claims.url = d.url"
        ).bindparams(times[0]),
        "claimed": text("SELECT url, done_at IS NOT NULL, data FROM page_claims WHERE url = ANY(CAST(:urls AS text[]))"),
    }


def claim(conn: Connection, urls: Sequence[str], now: datetime, stale_before: datetime, done_before: datetime) -> set[str]:
    """The pages of ``urls`` whose claim this caller now holds: none was made, or the one made went
    stale unfinished (before ``stale_before``) or finished before ``done_before``. One statement; the
    rows are taken in URL order, so two workers claiming overlapping pages cannot deadlock."""
    if not urls:
        return set()
    rows = conn.execute(_statements()["claim"], {"urls": sorted(set(urls)), "now": now, "stale_before": stale_before, "done_before": done_before})
    return {row[0] for row in rows}


def finish(conn: Connection, pages: Sequence[tuple[str, bytes]], now: datetime) -> None:
    """The claimed pages are fetched: (url, extracted text) each, in one statement."""
    if pages:
        done = dict(pages)  # (a page finished twice in a group: once)
        urls = sorted(done)
        conn.execute(_statements()["finish"], {"urls": urls, "datas": [done[url] for url in urls], "now": now})


def claimed(conn: Connection, urls: Sequence[str]) -> dict[str, tuple[bool, bytes | None]]:
    """(done, data) of each page of ``urls`` that has a claim."""
    if not urls:
        return {}
    return {url: (done, data) for url, done, data in conn.execute(_statements()["claimed"], {"urls": sorted(set(urls))})}


def release(conn: Connection, urls: Sequence[str]) -> None:
    """Unfinished claims given up (their fetch failed): the next worker to ask takes them."""
    if urls:
        c = page_claims.c
        conn.execute(delete(page_claims).where(c.url.in_(sorted(set(urls))) & c.done_at.is_(None)))


def forget(conn: Connection, before: datetime) -> int:
    """Claims made before ``before`` go (pages are asked for within a round); returns how many."""
    return int(conn.execute(delete(page_claims).where(page_claims.c.claimed_at < before)).rowcount)
