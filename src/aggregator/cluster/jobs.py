"""The workers' job queue: procrastinate on the cluster's PostgreSQL database (its tables beside
ours, created by the first worker). Two tasks:

- ``aggregator.due`` (periodic, every ``SCHEDULE_S`` seconds; procrastinate defers each period once
  for all workers): the feeds that are due and have no answer waiting in the inbox each get a poll
  job; jobs of workers that stopped sending heartbeats are retried (their feeds taken over);
- ``aggregator.poll(feed_id)``: fetch the feed, parse it, fetch and extract its pages, leave the
  answer in the inbox (a 304 or an error: the feed's new state, written at once). A feed gets no
  job while one is queued or running; a job that finds its feed no longer due (an answer waiting,
  or polled meanwhile) does nothing.

``Worker`` holds what a worker process keeps between jobs: the parts the factory built (no dedup
index: the clusterer has it) and one HTTP client.
"""

from __future__ import annotations

import asyncio
import logging
import select
from typing import TYPE_CHECKING, Any

import psycopg
from procrastinate import App, PsycopgConnector
from procrastinate.jobs import Status
from procrastinate.types import JSONDict
from psycopg_pool import AsyncConnectionPool

from ..config import load_config
from ..errors import AggregatorError, ConfigError
from ..grouped import Grouped
from ..ingest import FeedBatch
from ..models import FeedState
from ..schedule import file_state
from ..store.locks import QUEUE_SCHEMA, DatabaseLock, libpq_url
from . import POLL_TASK
from .codec import encode_batch
from .pages import SharedPages

if TYPE_CHECKING:
    from ..core import Aggregator
    from ..fetch import Fetcher

log = logging.getLogger(__name__)

SCHEDULE_S = 2  # how often due feeds are looked for (a cron field: divides 60)
DUE_BATCH = 5000  # polls queued at most per look (100,000 feeds every 15 minutes: about 220 every 2 s)
DUE_TASK = "aggregator.due"
DUE_LOOK = "aggregator:due"  # the advisory lock of the look for due feeds
FEEDS_QUEUE, SCHEDULE_QUEUE = "feeds", "schedule"


class Worker:
    """One worker process's state between jobs."""

    def __init__(self, agg: Aggregator) -> None:
        self.agg = agg
        self.settings = agg.config.settings.cluster  # how soon a dead worker's jobs are retried: heartbeat, stalled_after
        self._fetcher: Fetcher | None = None
        self._pages: SharedPages | None = None
        self._config_seen = file_state(agg.config.path) if agg.config.path else None
        self._look = DatabaseLock(agg.config.database_url, DUE_LOOK)  # one look for due feeds at a time over the cluster
        # Polls starting or ending together check their feeds and leave their answers in one statement each.
        self._still_due: Grouped[int, FeedState | None] = Grouped(self._still_due_group)
        self._leave: Grouped[tuple[int, int, bytes], int] = Grouped(self._leave_group)

    async def close(self) -> None:
        self._look.close()
        if self._fetcher is not None:
            await self._fetcher.aclose()
            self._fetcher = None

    def fetcher(self) -> Fetcher:
        if self._fetcher is None:  # made in the worker's event loop, kept for its life (its connections too)
            from ..factory import make_fetcher

            self._fetcher = make_fetcher(self.agg.config, current=lambda: self.agg.config, cluster=True)
        return self._fetcher

    def pages(self) -> SharedPages:
        """The article pages this worker shares with the others (each fetched once a round)."""
        if self._pages is None:
            fetcher, agg = self.fetcher(), self.agg
            self._pages = SharedPages(agg.store, lambda entry: agg.page(fetcher, entry), agg.clock, agg.config.settings.fetch.total_deadline)
        return self._pages

    async def poll(self, feed_id: int) -> None:
        agg = self.agg
        now = agg.clock()
        feed = await self._still_due(feed_id)
        if feed is None:
            return  # polled meanwhile, disabled, or its last answer not stored yet (polled again once it is, if still due)

        async def leave(batch: FeedBatch) -> int:
            await self._leave((feed_id, len(batch.candidates), encode_batch(batch)))
            return len(batch.candidates)

        report = await agg.poll_feed(self.fetcher(), feed, now, hold=leave, pages=self.pages())
        log.debug("polled %s: %s", feed.url, report)

    async def _still_due_group(self, feed_ids: list[int]) -> list[FeedState | None]:
        due = {f.id: f for f in await asyncio.to_thread(self.agg.store.due_feeds, self.agg.clock(), len(feed_ids), feed_ids)}
        return [due.get(feed_id) for feed_id in feed_ids]

    async def _leave_group(self, answers: list[tuple[int, int, bytes]]) -> list[int]:
        return await asyncio.to_thread(self.agg.store.put_inbox, answers, self.agg.clock())

    async def due(self, app: App) -> int:
        """End the jobs of workers that stopped (their feeds are due still: polled again below), then
        queue a poll job for each due feed with no answer waiting and no poll queued or running, in
        one statement. Runs once at a time for the cluster. Returns how many were queued."""
        # One look at a time over the cluster: an advisory lock, not the job's own procrastinate lock,
        # which a worker killed in the middle would hold for ever (the look that ends a dead worker's jobs).
        if not await asyncio.to_thread(self._look.try_acquire):
            return 0
        try:
            return await self._look_for_due(app)
        finally:
            await asyncio.to_thread(self._look.release)

    async def _look_for_due(self, app: App) -> int:
        await asyncio.to_thread(self._reload_feeds)
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.settings.stalled_after):
            log.warning("job %s (%s %s) of a worker that stopped: ended, its feed polled again", job.id, job.task_name, job.task_kwargs)
            assert job.id is not None
            await app.job_manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
        agg = self.agg
        feeds = await asyncio.to_thread(agg.store.due_feeds, agg.clock(), DUE_BATCH)
        if not feeds:
            return 0
        listed = {f.url for f in agg.config.feeds}  # (the database keeps feeds the config no longer lists)
        queued = await asyncio.to_thread(agg.store.pending_polls, POLL_TASK)
        todo: list[JSONDict] = [{"feed_id": f.id} for f in feeds if (f.config_url or f.url) in listed and f.id not in queued]
        if todo:
            await app.configure_task(POLL_TASK, queue=FEEDS_QUEUE).batch_defer_async(*todo)
        deferred = len(todo)
        return deferred

    def _reload_feeds(self) -> None:
        """Take the feed list of the config file when it changed (the clusterer stores new feeds;
        this worker polls those its file lists). Other settings need a restart, as the daemon's."""
        path = self.agg.config.path
        if path is None or (state := file_state(path)) == self._config_seen or state is None:
            return
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("config not reloaded: %s (still polling the feeds loaded before)", exc)
        else:
            self.agg.config = self.agg.config.model_copy(update={"feeds": new.feeds})
            log.info("%s reloaded: %d feed(s)", path, len(new.feeds))
        self._config_seen = state


async def _check_if_readable(conn: psycopg.AsyncConnection[Any]) -> None:
    """psycopg_pool's check of a connection it hands out (an empty query: a round trip) only when
    there is a reason: the connection is closed, or its socket has something to read while idle
    (the server closed it, or said something, as a restart does). Otherwise none: every job fetched
    and finished paid one more round trip each."""
    if conn.closed or _readable(conn.fileno()):
        await AsyncConnectionPool.check_connection(conn)


def _readable(fd: int) -> bool:
    poller = select.poll()  # (not select.select: a busy worker's descriptors go past its 1024)
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


def _queue_pool(**kwargs: Any) -> AsyncConnectionPool[Any]:
    return AsyncConnectionPool(**{**kwargs, "check": _check_if_readable, "configure": _autocommit})


def queue_connector(url: str, max_size: int) -> PsycopgConnector:
    """procrastinate's connector to the cluster's database. Its pool's connections are in autocommit:
    procrastinate's statements are each one function call, and a transaction around each added a
    BEGIN and a COMMIT, two round trips more for each job fetched and finished."""
    return PsycopgConnector(conninfo=libpq_url(url), min_size=1, max_size=max_size, pool_factory=_queue_pool)


def make_app(worker: Worker) -> App:
    """The procrastinate app of this worker process, its two tasks bound to ``worker``."""
    app = App(connector=queue_connector(worker.agg.config.database_url, 8))

    @app.task(name=POLL_TASK, queue=FEEDS_QUEUE)
    async def poll(feed_id: int) -> None:
        try:
            await worker.poll(feed_id)
        except AggregatorError as exc:  # the database, most likely: the feed is due still, and polled again
            log.error("poll of feed %d failed: %s", feed_id, exc)

    @app.periodic(cron=f"* * * * * */{SCHEDULE_S}", periodic_id="due")
    @app.task(name=DUE_TASK, queue=SCHEDULE_QUEUE, pass_context=False, queueing_lock=DUE_TASK)
    async def due(timestamp: int) -> None:
        deferred = await worker.due(app)
        if deferred:
            log.info("%d feed(s) due: polls queued", deferred)

    _ = (poll, due)
    return app


async def ensure_queue_schema(app: App, url: str) -> None:
    """procrastinate's tables, created once (workers starting together: one creates them)."""
    with DatabaseLock(url, QUEUE_SCHEMA) as lock:
        await asyncio.to_thread(lock.wait, 0.2)
        rows: list[dict[str, Any]] = await app.connector.execute_query_all_async("SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present")
        if not rows[0]["present"]:
            log.info("creating the job queue's tables (procrastinate)")
            await app.schema_manager.apply_schema_async()


async def run_worker(worker: Worker, concurrency: int, name: str) -> None:
    """Run jobs until SIGINT/SIGTERM (procrastinate's handlers: running jobs finish first)."""
    app = make_app(worker)
    async with app.open_async():
        await ensure_queue_schema(app, worker.agg.config.database_url)
        try:
            await app.run_worker_async(
                concurrency=concurrency, name=name, delete_jobs="successful",
                update_heartbeat_interval=worker.settings.heartbeat, stalled_worker_timeout=worker.settings.stalled_after,
                fetch_job_polling_interval=1.0,
            )
        finally:
            await worker.close()
