"""What a cluster is doing, for ``aggregator cluster``: the clusterer (who holds the one-writer lock),
the workers alive (heartbeats in the job queue), the poll jobs by state, the inbox's backlog, and
the feeds due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .jobs import FEEDS_QUEUE

if TYPE_CHECKING:
    from ..core import Aggregator


@dataclass(frozen=True)
class ClusterStatus:
    clusterer: str | None  # the lock holder's application name (host:pid), None: no clusterer runs
    workers_alive: int
    workers_silent: int  # registered, but no heartbeat for ``stalled_after``
    jobs: dict[str, int]  # poll jobs by status (todo, doing, failed, ...)
    inbox_answers: int
    inbox_articles: int
    inbox_oldest_s: float | None
    feeds_due: int

    def as_dict(self) -> dict[str, Any]:
        return {"clusterer": self.clusterer, "workers": {"alive": self.workers_alive, "silent": self.workers_silent}, "poll_jobs": self.jobs,
                "inbox": {"answers": self.inbox_answers, "articles": self.inbox_articles, "oldest_s": self.inbox_oldest_s},
                "feeds_due": self.feeds_due}


def cluster_status(agg: Aggregator, now: datetime) -> ClusterStatus:
    """Read the cluster's state from its database (procrastinate's tables read as they are)."""
    import psycopg

    from ..store.locks import WRITER, DatabaseLock, libpq_url

    with DatabaseLock(agg.config.database_url, WRITER) as lock:
        holder = lock.holder()
    stalled = timedelta(seconds=agg.config.settings.cluster.stalled_after)
    with psycopg.connect(libpq_url(agg.config.database_url), autocommit=True) as conn:
        queue = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        alive = silent = 0
        jobs: dict[str, int] = {}
        if queue and queue[0]:
            for fresh, n in conn.execute("SELECT last_heartbeat >= %s, count(*) FROM procrastinate_workers GROUP BY 1", (now - stalled,)):
                alive, silent = (alive + n, silent) if fresh else (alive, silent + n)
            jobs = {status: n for status, n in conn.execute(
                "SELECT status::text, count(*) FROM procrastinate_jobs WHERE queue_name = %s GROUP BY 1", (FEEDS_QUEUE,))}
    answers, articles, oldest = agg.store.inbox_backlog()
    due = sum(1 for f in agg.feeds() if not f.disabled_reason and (f.next_poll_at is None or f.next_poll_at <= now))
    return ClusterStatus(holder, alive, silent, jobs, answers, articles, (now - oldest).total_seconds() if oldest else None, due)
