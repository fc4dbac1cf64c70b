"""``Aggregator``: polling. Fetch, parse, extract, dedup and store each due feed, a round at a time;
the reading side (listing stories, the digest) is its base, ``Library``. Built by the factory
(``factory.make_aggregator``), which the CLI, the daemon, the demo, ``eval`` and the benchmarks all
use, so each exercises the real path."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from . import decide
from .backlog import ROUND_BACKLOG, ROUND_HOLD_S, Backlog
from .config import Config
from .errors import FeedError, FetchError, NetworkError, StorageError
from .extract import choose_text, extract_page, needs_page
from .grouped import Grouped
from .ingest import Candidate, FeedBatch, Ingest, claims, content_hash, page_date_credible
from .library import Clock, Library, utcnow
from .models import Entry, FeedState, FeedUpdate, PageText, ParsedFeed, PollReport
from .pages import Pages, RoundPages
from .parse import parse_feed
from .pool import Pool
from .store import StoreProtocol
from .store.interface import StoredEntry
from .urls import host_of

if TYPE_CHECKING:
    from .dedup import Deduplicator
    from .fetch import Fetcher

log = logging.getLogger(__name__)
FEED_LOG = "aggregator.feeds"  # one line per failed poll or broken feed: the daemon's record of them (`poll` prints its own)
feed_log = logging.getLogger(FEED_LOG)

T = TypeVar("T")
# What is stored of a polled feed's entries: (stored entries with what is stored, new entries, the
# stored owners of the new ones' article URLs: article id and its feed's site).
_Stored = tuple[list[tuple[Entry, StoredEntry]], list[Entry], dict[str, tuple[int, str | None]]]
FUTURE_TOLERANCE = timedelta(hours=1)
PARSE_OFFLOAD_BYTES = 4096  # feeds at least this big are parsed in the process pool (a few ms each)
OUTAGE_SAMPLE = 8  # this many network failures in a row, across 3+ hosts, means our network is down

__all__ = ["FEED_LOG", "Aggregator", "Clock", "ConfigChange", "config_change", "utcnow"]


@dataclass(frozen=True)
class ConfigChange:
    """What a reloaded config changes: feeds by their config URL, settings by their dotted key."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retuned: tuple[str, ...] = ()  # listed before and after, with another name or interval
    settings: tuple[str, ...] = ()  # e.g. "settings.fetch.read_timeout"

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retuned or self.settings)


def config_change(old: Config, new: Config) -> ConfigChange:
    """The difference between two configs of one file, for the daemon's reload (pure)."""
    before = {f.url: f for f in old.feeds}
    after = {f.url: f for f in new.feeds}
    return ConfigChange(
        added=tuple(url for url in after if url not in before),
        removed=tuple(url for url in before if url not in after),
        retuned=tuple(url for url, f in after.items() if url in before and (before[url].name, before[url].interval) != (f.name, f.interval)),
        settings=tuple(_changed_keys(old.settings.model_dump(), new.settings.model_dump(), "settings")),
    )


def _changed_keys(old: Any, new: Any, key: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [k for name in {**old, **new} for k in _changed_keys(old.get(name), new.get(name), f"{key}.{name}")]
    return [key] if old != new else []


class Aggregator(Library):
    """Everything the commands that poll need, from the parts the factory built."""

    def __init__(self, config: Config, store: StoreProtocol, ingest: Ingest, pool: Pool, fetchers: Callable[[], Fetcher],
                 clock: Clock = utcnow) -> None:
        """No I/O: ``fetchers`` makes a fetcher (an HTTP client) for a round; the pool starts on first use."""
        self.ingest = ingest
        super().__init__(config, store, clock)
        self.pool = pool
        self.new_fetcher = fetchers
        self._in_flight: set[int] = set()
        self._feed_updates: Grouped[tuple[int, FeedUpdate, datetime], None] = Grouped(self._write_feed_updates)  # feed-state writes
        self._lookups: Grouped[tuple[FeedState, ParsedFeed], _Stored] = Grouped(self._look_up)  # what is stored of polled feeds' entries
        self._recent: deque[tuple[str, bool]] = deque(maxlen=OUTAGE_SAMPLE)  # (host, reached) of recent polls

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        """The index reads the same clock (tests move it)."""
        self._clock = value
        self.ingest.clock = value

    def close(self) -> None:
        self.pool.close()
        super().close()

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

    async def apply_feeds(self, new: Config) -> ConfigChange:
        """Take the feed list of a reloaded config (the daemon's hot reload): feeds new to it are
        added to the store, known ones take their new name and interval, and those left out are no
        longer among ``feeds()`` (their articles stay). The other settings stay as they were: the
        parts built from them (the HTTP client and its address guard, the dedup index, the process
        pool, the storage, the digest's schedule) live as long as the process, and one config in
        force, not half of two, is easier to reason about. The change lists them, for the log."""
        change = config_change(self.config, new)
        if not (change.added or change.removed or change.retuned):
            return change
        before, self.config = self.config, self.config.model_copy(update={"feeds": new.feeds})
        try:
            if change.added or change.retuned:
                await self._write(self.sync_feeds)
        except BaseException:
            self.config = before  # not applied: the reload is tried again
            raise
        return change

    # -- polling ---------------------------------------------------------------

    def due_feeds(self, now: datetime) -> list[FeedState]:
        return [
            f for f in self.feeds()
            if not f.disabled_reason and (f.next_poll_at is None or f.next_poll_at <= now) and f.id not in self._in_flight
        ]

    async def poll_round(
        self, now: datetime | None = None, due_only: bool = True, fetcher: Fetcher | None = None, feeds: list[FeedState] | None = None,
        progress: Callable[[int, PollReport], None] | None = None,
    ) -> list[PollReport]:
        """Poll every due feed (or every enabled feed, or the given ones) once, concurrently; one
        report per feed. The round's new articles are stored across feeds in publication order.
        ``progress(total, report)`` is called as each feed is done (a progress bar's hook)."""
        now = now or self.clock()
        self.housekeeping(now, snapshot=False)
        if feeds is None:
            feeds = self.due_feeds(now) if due_only else [f for f in self.feeds() if not f.disabled_reason]
        if not feeds:
            return []
        own = fetcher is None
        fetcher = fetcher or self.new_fetcher()
        backlog = Backlog(len(feeds), lambda batches: self._write(self.ingest.commit, batches), ROUND_BACKLOG, ROUND_HOLD_S)
        pages = self._round_pages(fetcher)  # a page that several feeds list is fetched once

        async def poll(i: int, feed: FeedState) -> PollReport:
            try:
                report = await self.poll_feed(fetcher, feed, now, hold=lambda batch: backlog.put(i, batch), pages=pages)
            except StorageError:
                raise  # the database, not the feed: every feed of the round is affected
            except Exception as exc:  # a defect met on one feed must not cost the round's other feeds
                log.error("%s: unexpected error while polling: %s: %s", feed.url, type(exc).__name__, exc, exc_info=True)
                report = PollReport(feed.url, None, 0, error=f"unexpected error: {type(exc).__name__}: {exc}")
            finally:
                backlog.finish(i)
            if progress is not None:
                progress(len(feeds), report)
            return report

        try:
            return list(await asyncio.gather(*(poll(i, f) for i, f in enumerate(feeds))))
        finally:
            pages.close()
            if own:
                await fetcher.aclose()
            self.save_snapshot()

    async def poll_feed(
        self, fetcher: Fetcher, feed: FeedState, now: datetime | None = None,
        hold: Callable[[FeedBatch], Awaitable[int]] | None = None, pages: Pages | None = None,
    ) -> PollReport:
        """Fetch, parse, extract, dedup and store one feed; errors end up on the feed, not raised.
        With ``hold``, its new articles are handed to it to store (a round's backlog); with
        ``pages``, its article pages are the round's (each fetched once for all its feeds).
        ``now`` is the round's time; the next poll counts from when the answer came."""
        if feed.id in self._in_flight:
            return PollReport(feed.url, None, 0, error="already being polled")
        self._in_flight.add(feed.id)
        now = now or self.clock()
        sched = self.config.settings.schedule
        own_pages = pages is None
        if pages is None:
            pages = self._round_pages(fetcher)
        try:
            try:
                result = await fetcher.fetch_feed(feed.url, feed.etag, feed.last_modified)
                answered = self._answered(now)
                self._recent.append((host_of(feed.url), True))
                if result.not_modified:
                    await self._update_feed(feed.id, decide.after_success(feed, result, None, answered, sched), now)
                    return PollReport(feed.url, 304, 0, not_modified=True)
                if len(result.content) >= PARSE_OFFLOAD_BYTES:  # the other core parses while this one fetches and stores
                    parsed = await self._offload(parse_feed, result.final_url, result.content, result.headers)
                else:
                    parsed = parse_feed(result.final_url, result.content, result.headers)
                if parsed.broken:
                    feed_log.warning("%s: read, but the feed is broken: %s", feed.url, parsed.warning)
                elif parsed.warning:
                    log.info("%s: minor feed problem: %s", feed.url, parsed.warning)
                candidates = await self._prepare(pages, feed, parsed, now)
                batch = FeedBatch(feed, parsed, candidates, decide.after_success(feed, result, parsed, answered, sched), now)
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
                # Retry-After and backoff count from the answer, not from the round's start.
                await self._update_feed(feed.id, rule(feed, exc, self._answered(now), sched), now)
                return PollReport(feed.url, getattr(exc, "status", None), 0, error=exc.message)
        finally:
            self._in_flight.discard(feed.id)
            if own_pages:
                pages.close()

    def _answered(self, now: datetime) -> datetime:
        """When an answer came: the clock, read as it comes (never before the round's ``now``, which a
        caller may set ahead of the clock)."""
        return max(now, self.clock())

    def _round_pages(self, fetcher: Fetcher) -> RoundPages:
        return RoundPages(lambda entry: self.page(fetcher, entry))

    def network_outage(self) -> bool:
        """True when the last polls all failed to reach their servers, across several hosts."""
        recent = list(self._recent)
        return len(recent) == OUTAGE_SAMPLE and not any(ok for _, ok in recent) and len({h for h, _ in recent}) >= 3

    async def _prepare(self, round_pages: Pages, feed: FeedState, parsed: ParsedFeed, now: datetime) -> list[Candidate]:
        """Entries not stored yet, with their text (from the page when the feed's is short), and the
        stored entries the feed changed (``_revisions``)."""
        known, fresh, owners = await self._lookups((feed, parsed))
        claimed = claims(feed, parsed, fresh, owners, now)  # stored from a feed whose site does not serve them
        fresh = [e for e in fresh if not e.url or e.url not in owners]
        ext = self.config.settings.extract
        pages = await asyncio.gather(*(
            round_pages.get(e) if ext.fetch_pages and needs_page(e, ext.min_feed_text_chars) else _none()
            for e in fresh
        ))
        candidates = []
        for entry, page in zip(fresh, pages, strict=True):
            text, from_page = choose_text(entry.text, page)
            title = entry.title or (page.title if page else "") or ""
            if not text and not title:
                continue
            # An undated entry takes its page's date only when that is credible for this feed;
            # otherwise it is dated when first seen (stale page metadata must not make it first).
            page_date = page.published if page else None
            if page_date is not None and not page_date_credible(feed, page_date, now):
                page_date = None
            dated = entry.published or page_date
            published = dated or now
            if published > now + FUTURE_TOLERANCE:  # a feed's clock or typo; never let it sort ahead of real news
                published = now
            lang = entry.lang or (page.lang if page else None) or parsed.lang
            candidates.append(Candidate(entry, text or title, title or text[:120], published, lang, from_page, dated is not None))
        # Oldest first (feeds list newest first): stories then grow in the order the news happened.
        return sorted(candidates, key=lambda c: (c.published, c.entry.guid)) + claimed + await self._revisions(round_pages, known, now)

    async def _look_up(self, group: list[tuple[FeedState, ParsedFeed]]) -> list[_Stored]:
        """What is stored of the feeds' entries (``_stored``), for polls that came to it together:
        one thread hand-off, one connection and one look at the new entries' URLs for the group (a
        database across the network: off the event loop)."""
        return await asyncio.to_thread(self._stored, group)

    def _stored(self, group: list[tuple[FeedState, ParsedFeed]]) -> list[_Stored]:
        """Of each feed's entries: those stored (with what is stored), those new, and the stored owners of the new ones' URLs."""
        with self.store.reading() as r:
            split = [_split(parsed, r.known_entries(feed.id, [e.guid for e in parsed.entries], [e.url for e in parsed.entries if e.url]))
                     for feed, parsed in group]
            owners = r.url_owners(sorted({e.url for _, fresh in split for e in fresh if e.url}))
        return [(known, fresh, {e.url: owners[e.url] for e in fresh if e.url and e.url in owners}) for known, fresh in split]

    async def _revisions(self, round_pages: Pages, known: list[tuple[Entry, StoredEntry]], now: datetime) -> list[Candidate]:
        """Stored entries whose title or text the feed changed, as revisions (``Ingest._revise``).
        A text from the feed is compared as the feed gives it now: an unchanged entry costs a hash.
        A text from the article page is fetched again only when the feed's title for it changed:
        fetching every page at every poll would cost a request per entry; if the page cannot be
        fetched, the title alone is revised (its text stays)."""
        ext = self.config.settings.extract
        changed: list[tuple[Entry, StoredEntry, bool]] = []  # (entry, stored, fetch its page)
        for entry, stored in known:
            if stored.from_page:
                if entry.title and entry.title != stored.title:
                    changed.append((entry, stored, bool(entry.url) and ext.fetch_pages))
                continue
            title, text = _version(entry, None)
            if (title or text) and content_hash(title, text) != stored.content_hash:
                changed.append((entry, stored, ext.fetch_pages and needs_page(entry, ext.min_feed_text_chars)))
        pages = await asyncio.gather(*(round_pages.get(e) if fetch else _none() for e, _, fetch in changed))
        revisions = []
        for (entry, stored, _fetch), page in zip(changed, pages, strict=True):
            keep_text = stored.from_page and page is None  # the page is gone: the title changes, the text stays
            title, text = _version(entry, page)
            if keep_text:
                title, text = entry.title, ""
            elif not (title or text) or content_hash(title, text) == stored.content_hash:
                continue
            from_page = keep_text or (page is not None and choose_text(entry.text, page)[1])
            revisions.append(Candidate(entry, text, title, entry.published or now, entry.lang, from_page, entry.published is not None,
                                       revises=stored.article_id, keep_text=keep_text))
        return revisions

    async def page(self, fetcher: Fetcher, entry: Entry) -> PageText | None:
        """The entry's article page, fetched and extracted (None when it cannot be fetched: the feed's text serves)."""
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
        loop keeps fetching and storing while the other core works."""
        return await self.pool.run(func, *args)

    async def _update_feed(self, feed_id: int, change: FeedUpdate, now: datetime) -> None:
        """Write a feed's new state (after a 304 or an error). Such writes are grouped: those that
        queue while one group is written go in the next, one transaction for all (a round with
        700 unchanged feeds made 700 transactions)."""
        await self._feed_updates((feed_id, change, now))

    async def _write_feed_updates(self, group: list[tuple[int, FeedUpdate, datetime]]) -> list[None]:
        await self._write(self.ingest.update_feeds, group)
        return [None] * len(group)

    async def _write(self, func: Callable[..., T], *args: Any) -> T:
        """Run a database write in a worker thread, one at a time, so the event loop keeps fetching."""

        def locked() -> T:
            with self.ingest.lock:
                return func(*args)

        return await asyncio.to_thread(locked)


async def _none() -> None:
    return None


def _split(parsed: ParsedFeed, stored: list[StoredEntry]) -> tuple[list[tuple[Entry, StoredEntry]], list[Entry]]:
    """A feed's entries: those stored (with what is stored, matched by entry id, else by article URL)
    and those new."""
    by_guid = {s.guid: s for s in stored}
    by_url = {s.url: s for s in stored if s.url}
    known, matched = [], {by_guid[e.guid].article_id for e in parsed.entries if e.guid in by_guid}
    for e in parsed.entries:
        if e.guid in by_guid:
            known.append((e, by_guid[e.guid]))
        elif e.url and e.url in by_url and by_url[e.url].article_id not in matched:
            # The same article URL under a new entry id: one entry per article, so that two
            # entries listing one URL never take turns revising it.
            matched.add(by_url[e.url].article_id)
            known.append((e, by_url[e.url]))
    return known, [e for e in parsed.entries if e.guid not in by_guid and not (e.url and e.url in by_url)]


def _version(entry: Entry, page: PageText | None) -> tuple[str, str]:
    """(title, text) of an entry as ``_prepare`` stores it (and ``content_hash`` compares it)."""
    text, _ = choose_text(entry.text, page)
    title = entry.title or (page.title if page else "") or ""
    return title or text[:120], text or title
