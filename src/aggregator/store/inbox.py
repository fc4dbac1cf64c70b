"""The inbox: feeds' answers that workers fetched, parsed and extracted (``aggregator worker``),
waiting for the one clusterer to store them, in the order they arrived. The clusterer deletes what it
stores in the transaction that stores it, so an answer is stored once or, if that transaction fails,
stays for the next try.

Functions take the SQLAlchemy connection they run on; ``Store`` owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import Connection

from ..errors import InboxConflict
from .schema import inbox


def put(conn: Connection, answers: Sequence[tuple[int, int, bytes]], now: datetime) -> list[int]:
    """Keep feeds' answers for the clusterer, (feed id, articles carried, data) each, in one
    statement (one round trip); returns their places in the inbox, in the answers' order."""
    if not answers:
        return []
    rows = [{"feed_id": feed_id, "created_at": now, "articles": articles, "data": data} for feed_id, articles, data in answers]
    return [int(r[0]) for r in conn.execute(insert(inbox).returning(inbox.c.id, sort_by_parameter_order=True), rows)]


def take(conn: Connection, limit: int) -> list[tuple[int, bytes]]:
    """The oldest answers waiting, at most ``limit``: (inbox id, data)."""
    return [(r[0], r[1]) for r in conn.execute(select(inbox.c.id, inbox.c.data).order_by(inbox.c.id).limit(limit))]


def consume(conn: Connection, ids: Sequence[int]) -> None:
    """The answers are stored (in this transaction): gone from the inbox. ``InboxConflict`` when one
    is gone already (a second clusterer: the transaction must roll back, or it would store it twice)."""
    if not ids:
        return
    removed = conn.execute(delete(inbox).where(inbox.c.id.in_(list(ids)))).rowcount
    if removed != len(ids):
        raise InboxConflict(f"{len(ids) - removed} of {len(ids)} inbox answers were stored by another process")


def backlog(conn: Connection) -> tuple[int, int, datetime | None]:
    """(answers waiting, articles they carry, when the oldest arrived)."""
    row = conn.execute(select(func.count(), func.coalesce(func.sum(inbox.c.articles), 0), func.min(inbox.c.created_at))).one()
    return int(row[0]), int(row[1]), row[2]


# A worker's poll jobs queued or running: procrastinate's jobs table, read as it is (here only).
_PENDING = "FROM procrastinate_jobs WHERE task_name = :task AND status IN ('todo', 'doing')"


def pending_polls(conn: Connection, task: str) -> set[int]:
    """The feeds that a worker's poll job (procrastinate ``task``, its one argument ``feed_id``) is
    queued or running for; none where there is no jobs table (no worker ever ran)."""
    if not _has_jobs(conn):
        return set()
    return set(conn.execute(text(f"SELECT DISTINCT (args->>'feed_id')::int {_PENDING}"), {"task": task}).scalars())


def polls_pending(conn: Connection, task: str) -> bool:
    """Whether any such poll is queued or running (the first row found is enough)."""
    return _has_jobs(conn) and bool(conn.execute(text(f"SELECT EXISTS (SELECT 1 {_PENDING})"), {"task": task}).scalar())


def _has_jobs(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None
