"""The facade: builds the parts from a config and runs them. The CLI, the daemon, the demo,
``eval`` and the benchmarks all go through here, so each exercises the real path."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import select
import signal
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

import httpx

from . import decide
from .config import Config
from .dedup import Deduplicator
from .digest import DigestFiles, render_digest, write_atomically
from .errors import FeedError, FetchError, NetworkError, StorageError
from .extract import choose_text, extract_page, needs_page
from .fetch import Fetcher
from .ingest import Candidate, FeedBatch, Ingest
from .models import Entry, FeedState, FeedUpdate, PageText, ParsedFeed, PollReport, Story
from .parse import parse_feed
from .store import Store
from .urls import host_of

log = logging.getLogger(__name__)
FEED_LOG = "aggregator.feeds"  # one line per failed poll or broken feed: the daemon's record of them (`poll` prints its own)
feed_log = logging.getLogger(FEED_LOG)

Clock = Callable[[], datetime]
T = TypeVar("T")
FUTURE_TOLERANCE = timedelta(hours=1)
PARSE_OFFLOAD_BYTES = 4096  # feeds at least this big are parsed in the process pool (a few ms each)
ROUND_BACKLOG = 5000  # articles a round holds before storing them (publication order holds within each group) ...
ROUND_HOLD_S = 5.0  # ... and the longest the first of them waits for the rest of the round's feeds
OUTAGE_SAMPLE = 8  # this many network failures in a row, across 3+ hosts, means our network is down


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Backlog:
    """A round's new articles, held until every feed of the round has answered, then stored across
    feeds in publication order: the stories a round makes do not depend on which feed answered
    first or last (a daemon's first start stores days of backlog from every feed at once). What is
    held is stored anyway once ``limit`` articles are held (memory stays bounded) or the first of
    them has waited ``hold_s`` (a slow feed, or pages still being extracted, do not keep the rest
    from being stored: progress is kept if the process dies, and users see it)."""

    def __init__(self, feeds: int, store: Callable[[list[FeedBatch]], Awaitable[list[int]]], limit: int, hold_s: float) -> None:
        self._pending = set(range(feeds))
        self._held: list[tuple[FeedBatch, asyncio.Future[int]]] = []
        self._articles = 0
        self._store = store
        self._limit = limit
        self._hold_s = hold_s
        self._timer: asyncio.TimerHandle | None = None  # stores what is held once the first of it has waited hold_s
        self._last: asyncio.Task[None] | None = None  # the latest group's write; groups are written in turn

    async def put(self, i: int, batch: FeedBatch) -> int:
        """Hold feed ``i``'s batch; returns how many of its articles were stored, once they are."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._held.append((batch, done))
        self._articles += len(batch.candidates)
        if self._timer is None:
            self._timer = loop.call_later(self._hold_s, self._flush)
        self.finish(i)
        return await done

    def finish(self, i: int) -> None:
        """Feed ``i`` has nothing more to hold (stored, unchanged or failed)."""
        self._pending.discard(i)
        if not self._pending or self._articles >= self._limit:
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            group, self._held, self._articles = self._held, [], 0
            self._last = asyncio.get_running_loop().create_task(self._write(group, self._last))

    async def _write(self, group: list[tuple[FeedBatch, asyncio.Future[int]]], previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            counts = await self._store([batch for batch, _ in group])
        except BaseException as exc:  # every feed of the group learns of it (e.g. a locked database)
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, done), n in zip(group, counts, strict=True):
                if not done.done():
                    done.set_result(n)


def _fail(waiting: Sequence[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    """Pass a group write's failure on to everyone waiting on it; a cancellation cancels them."""
    for _, done in waiting:
        if done.done():
            continue
        if isinstance(exc, Exception):
            done.set_exception(exc)
        else:
            done.cancel()


class Aggregator:
    """Everything a command needs, built from one config."""

    def __init__(
        self, config: Config, clock: Clock = utcnow, transport: httpx.AsyncBaseTransport | None = None, reader: bool = False,
    ) -> None:
        """``reader``: for commands that only read (listing, digest): feeds new to the config are
        added, but the stored name and interval of known ones are left to the commands that poll
        (a second config listing the same feed must not retune the daemon that polls it)."""
        self.config = config
        self.clock = clock
        self.transport = transport
        self.store = Store(config.database_url)
        self.ingest = Ingest(config.settings.dedup, self.store, lambda: self.clock())
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._in_flight: set[int] = set()
        self._feed_updates: list[tuple[int, FeedUpdate, datetime, asyncio.Future[None]]] = []  # queued feed-state writes
        self._flusher: asyncio.Task[None] | None = None  # the task writing them
        self._recent: deque[tuple[str, bool]] = deque(maxlen=OUTAGE_SAMPLE)  # (host, reached) of recent polls
        self.sync_feeds(refresh=not reader)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.store.close()

    def _extractor(self) -> concurrent.futures.Executor | None:
        """A process pool for extraction (CPU-bound), started on first use; None means threads."""
        workers = self.config.settings.extract.workers or os.cpu_count() or 1
        if workers <= 1:
            return None
        if self._pool is None:
            # forkserver: forking a process that runs threads (HTTP client, servers) is not safe
            context = multiprocessing.get_context("forkserver")
            self._pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_setup, initargs=(os.getpid(),))
        return self._pool

    # -- setup --------------------------------------------------------------------

    def sync_feeds(self, refresh: bool = True) -> None:
        default = self.config.settings.schedule.default_interval
        self.store.sync_feeds(
            [(f.url, f.name or host_of(f.url), int(f.interval or default)) for f in self.config.feeds], refresh=refresh
        )

    def feeds(self) -> list[FeedState]:
        """The configured feeds with their stored state."""
        return self.store.feeds(config_urls=[f.url for f in self.config.feeds])

    @property
    def dedup(self) -> Deduplicator:
        return self.ingest.dedup

    def ensure_index(self) -> int:
        """The dedup index, rebuilt from storage if needed; returns how many articles it holds."""
        return self.ingest.ensure_index()

    def housekeeping(self, now: datetime, snapshot: bool = True, force: bool = False) -> int:
        """Forget articles that left the dedup window and, if due, snapshot the statistics; returns how many left."""
        return self.ingest.housekeeping(now, snapshot, force)

    def save_snapshot(self, force: bool = False) -> bool:
        """Persist the dedup statistics if enough articles arrived since the last snapshot."""
        return self.ingest.save_snapshot(force)

    # -- polling ---------------------------------------------------------------

    def due_feeds(self, now: datetime) -> list[FeedState]:
        return [
            f for f in self.feeds()
            if not f.disabled_reason and (f.next_poll_at is None or f.next_poll_at <= now) and f.id not in self._in_flight
        ]

    async def poll_round(
        self, now: datetime | None = None, due_only: bool = True, fetcher: Fetcher | None = None, feeds: list[FeedState] | None = None,
    ) -> list[PollReport]:
        """Poll every due feed (or every enabled feed, or the given ones) once, concurrently; one
        report per feed. The round's new articles are stored across feeds in publication order."""
        now = now or self.clock()
        self.housekeeping(now, snapshot=False)
        if feeds is None:
            feeds = self.due_feeds(now) if due_only else [f for f in self.feeds() if not f.disabled_reason]
        if not feeds:
            return []
        own = fetcher is None
        fetcher = fetcher or Fetcher(self.config.settings.fetch, self.config.settings.allow_hosts, transport=self.transport)
        backlog = _Backlog(len(feeds), lambda batches: self._write(self.ingest.commit, batches), ROUND_BACKLOG, ROUND_HOLD_S)

        async def poll(i: int, feed: FeedState) -> PollReport:
            try:
                return await self.poll_feed(fetcher, feed, now, hold=lambda batch: backlog.put(i, batch))
            except StorageError:
                raise  # the database, not the feed: every feed of the round is affected
            except Exception as exc:  # a defect met on one feed must not cost the round's other feeds
                log.error("%s: unexpected error while polling: %s: %s", feed.url, type(exc).__name__, exc, exc_info=True)
                return PollReport(feed.url, None, 0, error=f"unexpected error: {type(exc).__name__}: {exc}")
            finally:
                backlog.finish(i)

        try:
            return list(await asyncio.gather(*(poll(i, f) for i, f in enumerate(feeds))))
        finally:
            if own:
                await fetcher.aclose()
            self.save_snapshot()

    async def poll_feed(
        self, fetcher: Fetcher, feed: FeedState, now: datetime | None = None,
        hold: Callable[[FeedBatch], Awaitable[int]] | None = None,
    ) -> PollReport:
        """Fetch, parse, extract, dedup and store one feed; errors end up on the feed, not raised.
        With ``hold``, its new articles are handed to it to store (a round's backlog)."""
        if feed.id in self._in_flight:
            return PollReport(feed.url, None, 0, error="already being polled")
        self._in_flight.add(feed.id)
        now = now or self.clock()
        sched = self.config.settings.schedule
        try:
            try:
                result = await fetcher.fetch_feed(feed.url, feed.etag, feed.last_modified)
                self._recent.append((host_of(feed.url), True))
                if result.not_modified:
                    await self._update_feed(feed.id, decide.after_success(feed, result, None, now, sched), now)
                    return PollReport(feed.url, 304, 0, not_modified=True)
                if len(result.content) >= PARSE_OFFLOAD_BYTES:  # the other core parses while this one fetches and stores
                    parsed = await self._offload(parse_feed, result.final_url, result.content, result.headers)
                else:
                    parsed = parse_feed(result.final_url, result.content, result.headers)
                if parsed.broken:
                    feed_log.warning("%s: read, but the feed is broken: %s", feed.url, parsed.warning)
                elif parsed.warning:
                    log.info("%s: minor feed problem: %s", feed.url, parsed.warning)
                candidates = await self._prepare(fetcher, feed, parsed, now)
                batch = FeedBatch(feed, parsed, candidates, decide.after_success(feed, result, parsed, now, sched), now)
                if hold is not None:
                    new = await hold(batch)
                else:
                    new = (await self._write(self.ingest.commit, [batch]))[0]
                return PollReport(feed.url, result.status, new, warning=parsed.warning if parsed.broken else None)
            except FeedError as exc:
                feed_log.warning("%s", exc)
                reached = not isinstance(exc, NetworkError)
                self._recent.append((host_of(feed.url), reached))
                rule = decide.after_failure if reached or not self.network_outage() else decide.during_outage
                await self._update_feed(feed.id, rule(feed, exc, now, sched), now)
                return PollReport(feed.url, getattr(exc, "status", None), 0, error=exc.message)
        finally:
            self._in_flight.discard(feed.id)

    def network_outage(self) -> bool:
        """True when the last polls all failed to reach their servers, across several hosts."""
        recent = list(self._recent)
        return len(recent) == OUTAGE_SAMPLE and not any(ok for _, ok in recent) and len({h for h, _ in recent}) >= 3

    async def _prepare(self, fetcher: Fetcher, feed: FeedState, parsed: ParsedFeed, now: datetime) -> list[Candidate]:
        """Entries not stored yet, with their text (from the page when the feed's is short)."""
        with self.store.connect() as conn:
            known = self.store.known_guids(conn, feed.id, [e.guid for e in parsed.entries])
            fresh = [e for e in parsed.entries if e.guid not in known]
            known_urls = self.store.known_urls(conn, [e.url for e in fresh if e.url])
        fresh = [e for e in fresh if not e.url or e.url not in known_urls]
        ext = self.config.settings.extract
        pages = await asyncio.gather(*(
            self._page(fetcher, e) if ext.fetch_pages and needs_page(e, ext.min_feed_text_chars) else _none()
            for e in fresh
        ))
        candidates = []
        for entry, page in zip(fresh, pages, strict=True):
            text, from_page = choose_text(entry.text, page)
            title = entry.title or (page.title if page else "") or ""
            if not text and not title:
                continue
            dated = entry.published or (page.published if page else None)
            published = dated or now
            if published > now + FUTURE_TOLERANCE:  # a feed's clock or typo; never let it sort ahead of real news
                published = now
            lang = entry.lang or (page.lang if page else None) or parsed.lang
            candidates.append(Candidate(entry, text or title, title or text[:120], published, lang, from_page, dated is not None))
        # Oldest first (feeds list newest first): stories then grow in the order the news happened.
        return sorted(candidates, key=lambda c: (c.published, c.entry.guid))

    async def _page(self, fetcher: Fetcher, entry: Entry) -> PageText | None:
        assert entry.url
        try:
            result = await fetcher.fetch_page(entry.url)
        except FetchError as exc:
            log.info("article page unavailable, using feed text: %s", exc)
            return None
        # A feed that dates and titles its entry leaves nothing for the page's metadata to add.
        known_title = entry.title if entry.title and entry.published else None
        return await self._offload(extract_page, result.content, result.final_url, self.config.settings.extract.fast, known_title)

    async def _offload(self, func: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work (extracting a page, parsing a feed) in the process pool, so the event
        loop keeps fetching and storing while the other core works; in a thread when the pool is off."""
        pool = self._extractor()
        if pool is None:
            return await asyncio.to_thread(func, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, func, *args)
        except concurrent.futures.process.BrokenProcessPool:  # a worker died (e.g. out of memory): start afresh
            log.warning("a worker process died during %s; restarting the pool", func.__name__)
            self._pool = None
            return await asyncio.to_thread(func, *args)

    async def _update_feed(self, feed_id: int, change: FeedUpdate, now: datetime) -> None:
        """Write a feed's new state (after a 304 or an error). Such writes are grouped: those that
        queue while one group is written go in the next, one transaction for all (a round with
        700 unchanged feeds made 700 transactions)."""
        loop = asyncio.get_running_loop()
        if self._flusher is not None and self._flusher.get_loop() is not loop:  # left over from an ended event loop
            self._flusher, self._feed_updates = None, [u for u in self._feed_updates if u[3].get_loop() is loop]
        done = loop.create_future()
        self._feed_updates.append((feed_id, change, now, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._write_feed_updates())
        await done

    async def _write_feed_updates(self) -> None:
        while self._feed_updates:
            group, self._feed_updates = self._feed_updates, []
            try:
                await self._write(self.ingest.update_feeds, [(feed_id, change, now) for feed_id, change, now, _ in group])
            except BaseException as exc:
                _fail([(None, done) for *_, done in group], exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for *_, done in group:
                    if not done.done():
                        done.set_result(None)

    async def _write(self, func: Callable[..., T], *args: Any) -> T:
        """Run a database write in a worker thread, one at a time, so the event loop keeps fetching."""

        def locked() -> T:
            with self.ingest.lock:
                return func(*args)

        return await asyncio.to_thread(locked)

    # -- reading -------------------------------------------------------------------

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """[start, end) of a local calendar day, in UTC."""
        start = datetime.combine(day, time(0), tzinfo=self.config.tz)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.config.tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)

    def today(self) -> date:
        return self.clock().astimezone(self.config.tz).date()

    def stories_between(self, start: datetime, end: datetime) -> list[Story]:
        """Stories with a report in [start, end), most sources first, then earliest reported."""
        stories = self.store.load_stories(self.store.story_ids_between(start, end))
        return sorted(stories, key=lambda s: (-len(s.sources), -len(s.variants), s.first_reported_at, s.id))

    def stories_on(self, day: date) -> list[Story]:
        return self.stories_between(*self.day_bounds(day))

    def story(self, story_id: int) -> Story | None:
        found = self.store.load_stories([story_id], with_text=True)
        return found[0] if found else None

    def write_digest(self, day: date | None = None) -> DigestFiles:
        """Write storage/digests/YYYY-MM-DD.md and .html for a local day (atomically)."""
        day = day or self.today()
        stories = self.stories_on(day)[: self.config.settings.digest.max_stories]
        with_text = self.store.load_stories([s.id for s in stories], with_text=True)
        markdown, html = render_digest(day, with_text, self.config.settings.timezone, generated_at=self.clock())
        out = self.config.digest_dir
        md_path, html_path = out / f"{day.isoformat()}.md", out / f"{day.isoformat()}.html"
        write_atomically(md_path, markdown)
        write_atomically(html_path, html)
        log.info("digest for %s: %d stories -> %s", day, len(stories), md_path)
        return DigestFiles(md_path, html_path, len(stories))


async def _none() -> None:
    return None


def _worker_setup(parent: int) -> None:
    """In each pool worker: leave Ctrl-C to the parent (which stops the pool itself), and exit
    when the parent is gone. A worker outlives a parent killed with SIGKILL otherwise: it holds
    the write ends of its own task queue and of the forkserver's liveness pipe, so neither it nor
    the forkserver ever sees the parent leave."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        watched = os.pidfd_open(parent)  # readable once the parent has exited (Linux 5.3+)
    except (AttributeError, OSError):
        watched = None

    def watch() -> None:
        if watched is not None:
            select.select([watched], [], [])
        else:
            pause = threading.Event()
            while _alive(parent):
                pause.wait(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, the process is only looked up
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists (under another user)
    return True
