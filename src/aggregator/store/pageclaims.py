"""A cluster's shared article pages (``page_claims``): the first worker to ask for a page claims it
and leaves its extracted text; the others read it. A claim whose worker died goes stale and may be
taken over; a page done long enough ago may be claimed (fetched) again, for the revisions a later
round looks for. PostgreSQL only: the claim is an upsert that only one worker wins.

Functions take the SQLAlchemy connection they run on; ``Store`` owns it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Connection

from .schema import page_claims


def claim(conn: Connection, url: str, now: datetime, stale_before: datetime, done_before: datetime) -> bool:
    """Whether this caller now holds the page's claim: none was made, or the one made went stale
    unfinished (before ``stale_before``) or finished before ``done_before``."""
    from sqlalchemy.dialects.postgresql import insert  # (only a cluster claims pages: no dialect import on other paths)

    c = page_claims.c
    statement = (
        insert(page_claims).values(url=url, claimed_at=now, done_at=None, data=None)
        .on_conflict_do_update(index_elements=[c.url], set_={"claimed_at": now, "done_at": None, "data": None},
                               where=or_(c.done_at.is_(None) & (c.claimed_at < stale_before), c.done_at < done_before))
        .returning(c.url)
    )
    return conn.execute(statement).first() is not None


def finish(conn: Connection, url: str, data: bytes | None, now: datetime) -> None:
    """The claimed page is fetched: its extracted text (JSON ``null``: no article there)."""
    conn.execute(update(page_claims).where(page_claims.c.url == url).values(done_at=now, data=data))


def claimed(conn: Connection, url: str) -> tuple[bool, bytes | None] | None:
    """(done, data) of the page's claim; None when there is none."""
    row = conn.execute(select(page_claims.c.done_at, page_claims.c.data).where(page_claims.c.url == url)).first()
    return None if row is None else (row[0] is not None, row[1])


def forget(conn: Connection, before: datetime) -> int:
    """Claims made before ``before`` go (pages are asked for within a round); returns how many."""
    return int(conn.execute(delete(page_claims).where(page_claims.c.claimed_at < before)).rowcount)
