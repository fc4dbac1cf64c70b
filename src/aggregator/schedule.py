"""The long-running daemon: APScheduler wiring and signals (``factory.writer`` holds the storage's
one-writer lock around it).

Each feed is one APScheduler job with a date trigger at the feed's stored
``next_poll_at``; after a poll the job is re-armed at the time the decider
chose. Due times therefore live in the database: a restart neither skips nor
repeats work. A feed's job has ``max_instances=1``, and the facade refuses a
feed already in flight, so a feed is never polled twice at once.

The digest is a cron job in the configured time zone: at the configured time
it writes the digest of the day that just ended (final) and of today so far.

The config file is watched (its size, modification time and inode, every
``CONFIG_CHECK_S`` seconds): when it changes, the daemon reloads it and applies
its feed list without a restart (new feeds polled, removed ones no longer, new
names and intervals taken); other settings need a restart, and the log says so.
A config that does not load is logged, and the daemon goes on with the one it has.

The reader's corrections asked for while the daemon runs (``story split`` and the like queue
them: the daemon owns the dedup index) are applied at the same cadence, between placements
(``corrections.apply_pending_corrections`` takes the ingest lock).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import load_config
from .core import Aggregator
from .corrections import apply_pending_corrections
from .decide import base_interval
from .errors import AggregatorError, ConfigError
from .models import FeedState

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0
HOUSEKEEPING_S = 600
INBOX_CHECK_S = 0.5  # how often the clusterer looks at the inbox
CONFIG_CHECK_S = 2.0  # how often the config file's size, time and inode are compared (a stat call)
FileState = tuple[int, int, int, int] | None  # (inode, size, mtime ns, ctime ns); None: no file
UNSEEN: FileState = (-1, -1, -1, -1)  # before the first check, which compares the file with the config the daemon started on


def file_state(path: Path) -> FileState:
    """What tells that a file changed, without reading it (None when it cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class Daemon:
    """Polls every configured feed on its own schedule until told to stop. As the clusterer of a
    cluster (``inbox``), it polls nothing: it stores what workers left in the inbox, and stops when
    ``owner()`` says the one-writer lock is no longer its own."""

    def __init__(self, agg: Aggregator, inbox: bool = False, owner: Callable[[], bool] | None = None) -> None:
        self.agg = agg
        self.inbox = inbox
        self.owner = owner
        self.lost_lock = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._configured: set[int] = set()  # the ids of the feeds the config in force lists
        self._config_seen: FileState = UNSEEN  # the config file as last loaded (or found unloadable)

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
        config_path = agg.config.path
        async with agg.new_fetcher() as fetcher:
            self._fetcher = fetcher
            now = agg.clock()
            due = [] if self.inbox else agg.due_feeds(now)
            due_ids = {f.id for f in due}
            for feed in agg.feeds():
                self._configured.add(feed.id)
                if not self.inbox and not feed.disabled_reason and feed.id not in due_ids:
                    self._arm(scheduler, feed.id, feed.next_poll_at or now, now)
            if due:  # one round for all that is due (a first start: every feed's backlog), then a job each
                self._track(loop.create_task(self._catch_up(scheduler, due)))
            if self.inbox:
                scheduler.add_job(self._inbox_job, IntervalTrigger(seconds=INBOX_CHECK_S), id="inbox")
            if self.owner is not None:
                scheduler.add_job(self._check_owner, IntervalTrigger(seconds=CONFIG_CHECK_S), id="owner")
            scheduler.add_job(self._digest, CronTrigger(hour=digest_time.hour, minute=digest_time.minute, timezone=agg.config.tz), id="digest")
            scheduler.add_job(self._housekeeping, IntervalTrigger(seconds=HOUSEKEEPING_S), id="housekeeping")
            if config_path is not None:
                scheduler.add_job(self._check_config, IntervalTrigger(seconds=CONFIG_CHECK_S), args=[scheduler, config_path], id="config")
            scheduler.add_job(self._corrections_job, IntervalTrigger(seconds=CONFIG_CHECK_S), id="corrections")
            scheduler.start()
            log.info("%s started: %d feeds, %d signatures in the dedup window, digest daily at %s %s",
                     "clusterer" if self.inbox else "daemon", len(agg.feeds()), loaded, digest_time.strftime("%H:%M"), agg.config.settings.timezone)
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

    async def _catch_up(self, scheduler: AsyncIOScheduler, feeds: list[FeedState], label: str = "first round") -> None:
        """Poll the feeds due at start (or added to the config) as one round: their backlogs are
        stored across feeds in publication order, so the stories do not depend on which feed
        answered last."""
        agg = self.agg
        try:
            reports = await agg.poll_round(agg.clock(), fetcher=self._fetcher, feeds=feeds)
            log.info("%s: %d feeds, %d new articles", label, len(reports), sum(r.new_articles for r in reports))
        except Exception as exc:  # e.g. the database is locked for too long: every feed retries on its own later
            if isinstance(exc, AggregatorError):
                log.error("%s failed: %s", label, exc)
            else:  # a bug must not leave every feed unscheduled
                log.exception("%s failed", label)
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
        if feed_id not in self._configured:  # removed from the config since this poll was armed
            return
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

    async def _inbox_job(self) -> None:
        # Tracked as a poll is: stopping waits for the answers being stored.
        await asyncio.shield(self._track(asyncio.get_running_loop().create_task(self._inbox())))

    async def _inbox(self) -> None:
        """Store the answers workers left in the inbox (``cluster.clusterer.drain_inbox``)."""
        from .cluster.clusterer import drain_inbox

        try:
            answers, added = await asyncio.to_thread(drain_inbox, self.agg, self.agg.clock())
        except AggregatorError as exc:  # e.g. another clusterer stored them (its lock lost): the owner check stops this one
            log.error("inbox not stored: %s (trying again)", exc)
            return
        if answers:
            log.info("stored %d answer(s) from the workers: %d new article(s)", answers, added)

    async def _check_owner(self) -> None:
        assert self.owner is not None
        if not await asyncio.to_thread(self.owner):
            log.error("the one-writer lock is lost (the database restarted, or its connection broke): stopping")
            self.lost_lock = True
            self._stop.set()

    async def _corrections_job(self) -> None:
        # Tracked as a poll is: stopping waits for a correction being applied.
        await asyncio.shield(self._track(asyncio.get_running_loop().create_task(self._corrections())))

    async def _corrections(self) -> None:
        """Apply the corrections queued since the last tick (``story split`` and the like while we run)."""
        try:
            await asyncio.to_thread(apply_pending_corrections, self.agg)
        except AggregatorError as exc:  # e.g. the database was locked too long: the requests stay queued
            log.error("queued corrections not applied: %s (trying again)", exc)

    def _rearm(self, scheduler: AsyncIOScheduler, feed: FeedState) -> None:
        """After a poll: the feed's next job, at the time the decider chose."""
        if feed.id not in self._configured:  # removed from the config while it was being polled
            return
        if feed.disabled_reason:
            log.warning("%s: disabled: %s", feed.url, feed.disabled_reason)
        elif not self._stop.is_set():
            self._arm(scheduler, feed.id, feed.next_poll_at or self.agg.clock(), self.agg.clock())

    async def _check_config(self, scheduler: AsyncIOScheduler, path: Path) -> None:
        """Reload the config when its file changed, and apply its feed list (see the module's docstring)."""
        state = file_state(path)
        if state == self._config_seen:
            return
        if state is None:
            self._config_seen = None
            log.error("%s: the config file is gone or unreadable; still running on the config loaded before", path)
            return
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            if file_state(path) == state:  # (not half-written by an editor: that is seen again next time)
                self._config_seen = state
                log.error("config not reloaded: %s (still running on the config loaded before)", exc)
            return
        if file_state(path) != state:  # changed while it was read: read again next time
            return
        try:
            change = await self.agg.apply_feeds(new)
        except AggregatorError as exc:  # e.g. the database was locked too long: tried again next time
            log.error("config reloaded, but its feeds not applied: %s (trying again)", exc)
            return
        self._config_seen = state
        if self._stop.is_set():
            return
        if self.inbox:  # the workers poll: the feed list is in the database for them
            self._configured = {f.id for f in self.agg.feeds()}
        else:
            self._schedule_changes(scheduler, change.removed, change.retuned)
        if change.added or change.removed or change.retuned:
            log.info("%s reloaded: %d feed(s) added, %d removed, %d renamed or with a new interval; %d feed(s) in all",
                     path, len(change.added), len(change.removed), len(change.retuned), len(self._configured))
        if change.settings:
            log.warning("%s: changed settings are not applied until the daemon restarts: %s", path, ", ".join(change.settings))

    def _schedule_changes(self, scheduler: AsyncIOScheduler, removed: tuple[str, ...], retuned: tuple[str, ...]) -> None:
        """Jobs for the feeds the config now lists, none for those it left out; a feed whose new
        interval is shorter is polled by then, not at the time the old interval set."""
        agg = self.agg
        now = agg.clock()
        feeds = agg.feeds()
        listed = {f.id for f in feeds}
        for feed_id in self._configured - listed:
            if scheduler.get_job(f"feed-{feed_id}") is not None:
                scheduler.remove_job(f"feed-{feed_id}")
        for url in removed:
            log.info("%s: no longer polled (removed from the config)", url)
        new = [f for f in feeds if f.id not in self._configured and not f.disabled_reason]
        self._configured = listed
        due = [f for f in new if f.next_poll_at is None or f.next_poll_at <= now]
        for feed in new:
            log.info("%s: polled from now on (added to the config)", feed.url)
            if feed not in due:  # listed before, removed, now back: its stored schedule holds
                self._arm(scheduler, feed.id, feed.next_poll_at or now, now)
        if due:  # one round, as at start: their backlogs are stored in publication order
            self._track(asyncio.get_running_loop().create_task(self._catch_up(scheduler, due, "feeds added to the config")))
        sched = agg.config.settings.schedule
        for feed in agg.store.feeds(config_urls=list(retuned)) if retuned else []:
            job = scheduler.get_job(f"feed-{feed.id}")  # none while it is being polled: the poll re-arms it
            sooner = now + timedelta(seconds=base_interval(feed, sched))
            if job is not None and job.next_run_time is not None and job.next_run_time > sooner:
                self._arm(scheduler, feed.id, sooner, now)

    async def _digest(self) -> None:
        today = self.agg.today()
        # The day before yesterday too: where the digest time falls in a daylight-saving gap (zones
        # that skip from 00:00 to 01:00), the cron trigger skips that day, and yesterday would
        # otherwise never be written once it had ended.
        days = (today - timedelta(days=2), today - timedelta(days=1), today)
        for files in await asyncio.to_thread(self.agg.write_digests, days):  # (the story feeds once)
            log.info("wrote digest %s (%d stories)", files.markdown, files.stories)

    async def _housekeeping(self) -> None:
        if self.inbox:  # the workers' shared pages of past rounds
            from .cluster.pages import ROUND_S

            await asyncio.to_thread(self.agg.store.forget_pages, self.agg.clock() - timedelta(seconds=2 * ROUND_S))
        evicted = await asyncio.to_thread(self.agg.housekeeping, self.agg.clock())
        if evicted:
            log.info("dedup window: forgot %d old article(s) (still in the database); time decay %.2f per day, learned from the stream",
                     evicted, self.agg.dedup.decay_per_day)
