"""The clusterer: the one process that stores the workers' answers and places their articles into
stories. It owns the database's one-writer lock (``store.locks``); a second clusterer stands by until
the lock is free (its holder stopped or died: the server frees a dead process's lock with its
connection), then rebuilds the dedup window from the stored signatures and takes over.

It is the daemon in another role (``schedule.Daemon`` with ``inbox=True``): no feed of its own to
poll, the inbox drained instead; the digest, the story feeds, housekeeping, the config's feed list
and the reader's corrections as the daemon does them, once for the whole cluster.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..backlog import ROUND_BACKLOG, ROUND_HOLD_S
from ..errors import InboxConflict, StorageError
from . import POLL_TASK
from .codec import decode_batch

if TYPE_CHECKING:
    from ..core import Aggregator
    from ..ingest import FeedBatch
    from ..store.locks import DatabaseLock

log = logging.getLogger(__name__)

INBOX_TAKE = 500  # answers stored in one transaction at most
STANDBY_POLL_S = 0.5  # how often a standby asks for the lock


def stand_by(lock: DatabaseLock, stop: threading.Event, poll_s: float = STANDBY_POLL_S) -> bool:
    """Wait for the one-writer lock (True: taken), or for ``stop`` (False)."""
    if lock.try_acquire():
        return True
    log.info("standing by: another clusterer holds %s; taking over when it stops", lock.name)
    while not stop.wait(poll_s):
        if lock.try_acquire():
            log.info("took over: the lock was free")
            return True
    return False


def drain_inbox(agg: Aggregator, now: datetime, hold: timedelta = timedelta(seconds=ROUND_HOLD_S)) -> tuple[int, int]:
    """Store the answers waiting in the inbox, oldest first, in one transaction per ``INBOX_TAKE``,
    once the oldest has waited ``hold`` (answers of one round are then stored together, in
    publication order across feeds, as one process stores a round), they carry ``ROUND_BACKLOG``
    articles, or no worker has a poll queued or running (nothing more is coming: a round's last
    answers are stored at once). Returns (answers stored, new articles).

    A group that cannot be stored (not because another clusterer stored it) is stored one answer
    at a time, and an answer that cannot be stored even alone is dropped with an error naming its
    feed (its feed's state did not move: it is polled again): one bad answer never stops the rest."""
    answers, carried, oldest = agg.store.inbox_backlog()
    if not answers or (oldest is not None and now - oldest < hold and carried < ROUND_BACKLOG and agg.store.polls_pending(POLL_TASK)):
        return 0, 0
    stored = added = 0
    while True:
        rows = agg.store.take_inbox(INBOX_TAKE)
        if not rows:
            return stored, added
        answers_in = []
        for inbox_id, data in rows:
            try:
                answers_in.append((inbox_id, decode_batch(data)))
            except StorageError as exc:
                _drop(agg, inbox_id, f"inbox answer {inbox_id} dropped: {exc}")
        try:
            added += _store(agg, answers_in)
        except InboxConflict:
            raise
        except StorageError as exc:
            log.warning("%d inbox answers could not be stored together (%s): storing them one by one", len(answers_in), exc)
            for one in answers_in:
                try:
                    added += _store(agg, [one])
                except InboxConflict:
                    raise
                except StorageError as alone:
                    _drop(agg, one[0], f"inbox answer {one[0]} of {one[1].feed.url} dropped: {alone}")
        stored += len(answers_in)
        if len(rows) < INBOX_TAKE:
            return stored, added


def _store(agg: Aggregator, answers: list[tuple[int, FeedBatch]]) -> int:
    with agg.ingest.lock:
        return sum(agg.ingest.commit([batch for _, batch in answers], [inbox_id for inbox_id, _ in answers]))


def _drop(agg: Aggregator, inbox_id: int, reason: str) -> None:
    """Out of the way, said in the log; its feed's state did not move, so it is polled again."""
    log.error("%s", reason)
    with agg.store.transaction() as tx:
        tx.consume_inbox([inbox_id])
