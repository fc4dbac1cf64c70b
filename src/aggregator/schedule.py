"""The long-running daemon: APScheduler wiring and signals (``factory.writer`` holds the storage's
one-writer lock around it).

Each feed is one APScheduler job with a date trigger at the feed's stored
``next_poll_at``; after a poll the job is re-armed at the time the decider
chose. Due times therefore live in the database: a restart neither skips nor
repeats work. A feed's job has ``max_instances=1``, and the facade refuses a
feed already in flight, so a feed is never polled twice at once.

The digest is a cron job in the configured time zone: at the configured time
it writes the digest of the day that just ended (final) and of today so far.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .core import Aggregator
from .errors import AggregatorError
from .models import FeedState

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0
HOUSEKEEPING_S = 600


class Daemon:
    """Polls every configured feed on its own schedule until told to stop."""

    def __init__(self, agg: Aggregator) -> None:
        self.agg = agg
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run until SIGINT/SIGTERM (or ``stop()``); in-flight polls finish before returning. The
        caller holds the storage's writer lock (``factory.writer``)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        agg = self.agg
        loaded = agg.ensure_index()
        digest_time = agg.config.settings.digest.time
        scheduler = AsyncIOScheduler(timezone=agg.config.tz, job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1})
        async with agg.new_fetcher() as fetcher:
            self._fetcher = fetcher
            now = agg.clock()
            due = agg.due_feeds(now)
            due_ids = {f.id for f in due}
            for feed in agg.feeds():
                if not feed.disabled_reason and feed.id not in due_ids:
                    self._arm(scheduler, feed.id, feed.next_poll_at or now, now)
            if due:  # one round for all that is due (a first start: every feed's backlog), then a job each
                self._track(loop.create_task(self._catch_up(scheduler, due)))
            scheduler.add_job(self._digest, CronTrigger(hour=digest_time.hour, minute=digest_time.minute, timezone=agg.config.tz), id="digest")
            scheduler.add_job(self._housekeeping, IntervalTrigger(seconds=HOUSEKEEPING_S), id="housekeeping")
            scheduler.start()
            log.info("daemon started: %d feeds, %d signatures in the dedup window, digest daily at %s %s",
                     len(agg.feeds()), loaded, digest_time.strftime("%H:%M"), agg.config.settings.timezone)
            await self._stop.wait()
            log.info("stopping: waiting for %d poll(s) in flight", len(self._tasks))
            scheduler.pause()
            if self._tasks:
                done, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
                for task in pending:
                    task.cancel()  # lands on a network await; a write already in its thread still commits whole
                if pending:
                    await asyncio.wait(pending)
            scheduler.shutdown(wait=False)
        await asyncio.to_thread(agg.housekeeping, agg.clock(), True, True)  # a snapshot, so the next start replays little
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("daemon stopped")

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        self._stop.set()

    def _arm(self, scheduler: AsyncIOScheduler, feed_id: int, when: datetime, now: datetime) -> None:
        scheduler.add_job(
            self._poll_job, DateTrigger(run_date=max(when, now)), args=[scheduler, feed_id],
            id=f"feed-{feed_id}", replace_existing=True,
        )

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """A poll in flight: stopping waits for it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _catch_up(self, scheduler: AsyncIOScheduler, feeds: list[FeedState]) -> None:
        """Poll the feeds due at start as one round: their backlogs are stored across feeds in
        publication order, so the stories do not depend on which feed answered last."""
        agg = self.agg
        try:
            reports = await agg.poll_round(agg.clock(), fetcher=self._fetcher, feeds=feeds)
            log.info("first round: %d feeds, %d new articles", len(reports), sum(r.new_articles for r in reports))
        except Exception as exc:  # e.g. the database is locked for too long: every feed retries on its own later
            if isinstance(exc, AggregatorError):
                log.error("first round failed: %s", exc)
            else:  # a bug must not leave every feed unscheduled
                log.exception("first round failed")
            if not self._stop.is_set():
                for feed in feeds:
                    self._arm(scheduler, feed.id, agg.clock() + timedelta(minutes=5), agg.clock())
            return
        for feed in feeds:
            self._rearm(scheduler, agg.store.feed(feed.id))

    async def _poll_job(self, scheduler: AsyncIOScheduler, feed_id: int) -> None:
        # The real work runs in a task of our own, shielded from the scheduler's shutdown,
        # so that stopping lets it finish.
        await asyncio.shield(self._track(asyncio.get_running_loop().create_task(self._poll(scheduler, feed_id))))

    async def _poll(self, scheduler: AsyncIOScheduler, feed_id: int) -> None:
        agg = self.agg
        try:
            feed = agg.store.feed(feed_id)
            if feed.disabled_reason:
                return
            now = agg.clock()
            report = await agg.poll_feed(self._fetcher, feed, now)
            log.debug("polled %s: %s", feed.url, report)
            feed = agg.store.feed(feed_id)
        except AggregatorError as exc:  # e.g. the database is locked for too long: retry later
            log.error("poll of feed %d failed: %s", feed_id, exc)
            if not self._stop.is_set():
                self._arm(scheduler, feed_id, agg.clock() + timedelta(minutes=5), agg.clock())
            return
        except Exception:  # a defect: logged in full, and the feed is tried again later rather than never
            log.exception("poll of feed %d failed unexpectedly; retrying in an hour", feed_id)
            if not self._stop.is_set():
                self._arm(scheduler, feed_id, agg.clock() + timedelta(hours=1), agg.clock())
            return
        self._rearm(scheduler, feed)

    def _rearm(self, scheduler: AsyncIOScheduler, feed: FeedState) -> None:
        """After a poll: the feed's next job, at the time the decider chose."""
        if feed.disabled_reason:
            log.warning("%s: disabled: %s", feed.url, feed.disabled_reason)
        elif not self._stop.is_set():
            self._arm(scheduler, feed.id, feed.next_poll_at or self.agg.clock(), self.agg.clock())

    async def _digest(self) -> None:
        today = self.agg.today()
        # The day before yesterday too: where the digest time falls in a daylight-saving gap (zones
        # that skip from 00:00 to 01:00), the cron trigger skips that day, and yesterday would
        # otherwise never be written once it had ended.
        for day in (today - timedelta(days=2), today - timedelta(days=1), today):
            files = self.agg.write_digest(day)
            log.info("wrote digest %s (%d stories)", files.markdown, files.stories)

    async def _housekeeping(self) -> None:
        evicted = await asyncio.to_thread(self.agg.housekeeping, self.agg.clock())
        if evicted:
            log.info("dedup window: forgot %d old article(s) (still in the database); time decay %.2f per day, learned from the stream",
                     evicted, self.agg.dedup.decay_per_day)
