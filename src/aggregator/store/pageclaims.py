"""A cluster's shared article pages (``page_claims``): the first worker to ask for a page claims it
and leaves its extracted text; the others read it. A claim whose worker died goes stale and may be
taken over; a page done long enough ago may be claimed (fetched) again, for the revisions a later
round looks for. PostgreSQL only: the claim is an upsert that only one worker wins.

Functions take the SQLAlchemy connection they run on; ``Store`` owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import LargeBinary, Text, column, delete, or_, select, update, values
from sqlalchemy.engine import Connection

from .schema import page_claims


def claim(conn: Connection, urls: Sequence[str], now: datetime, stale_before: datetime, done_before: datetime) -> set[str]:
    """The pages of ``urls`` whose claim this caller now holds: none was made, or the one made went
    stale unfinished (before ``stale_before``) or finished before ``done_before``. One statement; the
    rows are taken in URL order, so two workers claiming overlapping pages cannot deadlock."""
    from sqlalchemy.dialects.postgresql import insert  # (only a cluster claims pages: no dialect import on other paths)

    c = page_claims.c
    statement = (
        insert(page_claims).values([{"url": url, "claimed_at": now, "done_at": None, "data": None} for url in sorted(set(urls))])
        .on_conflict_do_update(index_elements=[c.url], set_={"claimed_at": now, "done_at": None, "data": None},
                               where=or_(c.done_at.is_(None) & (c.claimed_at < stale_before), c.done_at < done_before))
        .returning(c.url)
    )
    return {row[0] for row in conn.execute(statement)} if urls else set()


def finish(conn: Connection, pages: Sequence[tuple[str, bytes]], now: datetime) -> None:
    """The claimed pages are fetched: (url, extracted text) each. One statement for them all (an
    executed statement per page cost the workers more than the rest of their database work)."""
    if pages:
        done = values(column("url", Text), column("data", LargeBinary), name="done").data(sorted(pages, key=lambda page: page[0]))
        conn.execute(update(page_claims).where(page_claims.c.url == done.c.url).values(done_at=now, data=done.c.data))


def claimed(conn: Connection, urls: Sequence[str]) -> dict[str, tuple[bool, bytes | None]]:
    """(done, data) of each page of ``urls`` that has a claim."""
    if not urls:
        return {}
    c = page_claims.c
    rows = conn.execute(select(c.url, c.done_at, c.data).where(c.url.in_(sorted(set(urls)))))
    return {url: (done_at is not None, data) for url, done_at, data in rows}


def release(conn: Connection, urls: Sequence[str]) -> None:
    """Unfinished claims given up (their fetch failed): the next worker to ask takes them."""
    if urls:
        c = page_claims.c
        conn.execute(delete(page_claims).where(c.url.in_(sorted(set(urls))) & c.done_at.is_(None)))


def forget(conn: Connection, before: datetime) -> int:
    """Claims made before ``before`` go (pages are asked for within a round); returns how many."""
    return int(conn.execute(delete(page_claims).where(page_claims.c.claimed_at < before)).rowcount)
