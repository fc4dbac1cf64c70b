"""The facade: builds the parts from a config and runs them. The CLI, the daemon, the demo,
``eval`` and the benchmarks all go through here, so each exercises the real path."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import Connection

from . import decide
from .config import Config
from .dedup import Decision, Deduplicator, Signature, choose_canonical, normalize
from .digest import DigestFiles, render_digest, write_atomically
from .errors import FeedError, FetchError, NetworkError, SchemaMismatch
from .extract import choose_text, extract_page, needs_page
from .fetch import Fetcher
from .models import Article, Entry, FeedState, FeedUpdate, PageText, ParsedFeed, PollReport, Story
from .parse import parse_feed
from .store import Store
from .urls import host_of

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
FUTURE_TOLERANCE = timedelta(hours=1)
SNAPSHOT_EVERY = 500  # articles between dedup snapshots (a restart replays at most this many)
OUTAGE_SAMPLE = 8  # this many network failures in a row, across 3+ hosts, means our network is down


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class _Candidate:
    """A new entry with its text chosen, before dedup."""

    entry: Entry
    text: str
    title: str
    published: datetime
    lang: str | None
    from_page: bool


class Aggregator:
    """Everything a command needs, built from one config."""

    def __init__(self, config: Config, clock: Clock = utcnow, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock
        self.transport = transport
        self.store = Store(config.database_url)
        self.dedup = Deduplicator(config.settings.dedup)
        self._index_ready = False
        self._snapshot_at = 0
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._write_lock = threading.RLock()  # one writer: the database and the dedup index change together
        self._in_flight: set[int] = set()
        self._recent: deque[tuple[str, bool]] = deque(maxlen=OUTAGE_SAMPLE)  # (host, reached) of recent polls
        self._window = timedelta(hours=config.settings.dedup.window_hours)
        self.sync_feeds()

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
            self._pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)
        return self._pool

    # -- setup --------------------------------------------------------------------

    def sync_feeds(self) -> None:
        default = self.config.settings.schedule.default_interval
        self.store.sync_feeds(
            [(f.url, f.name or host_of(f.url), int(f.interval or default)) for f in self.config.feeds]
        )

    def feeds(self) -> list[FeedState]:
        """The configured feeds with their stored state."""
        return self.store.feeds(config_urls=[f.url for f in self.config.feeds])

    def ensure_index(self) -> int:
        """The dedup index, rebuilt from storage if needed; returns how many articles it holds."""
        with self._write_lock:
            return self._ensure_index()

    def _ensure_index(self) -> int:
        """Rebuild the dedup index from storage (once); returns how many articles it holds.

        The newest snapshot gives the learned statistics; articles stored before it and still
        in the window are indexed as they were; articles stored after it are replayed in order,
        exactly as they were decided."""
        if self._index_ready:
            return len(self.dedup)
        self.dedup = Deduplicator(self.config.settings.dedup)
        foreign = self.store.signature_schemes() - {self.dedup.scheme}
        if foreign:
            raise SchemaMismatch(
                f"{self.config.database_url}: stored signatures use {sorted(foreign)[0]!r} but this configuration "
                f"makes {self.dedup.scheme!r}; restore the old dedup settings or start a new storage directory"
            )
        since = self.clock() - self._window
        snapshot = self.store.latest_snapshot(self.dedup.scheme)
        last = 0
        if snapshot is not None:
            last, data = snapshot
            crowd = self.dedup.load_snapshot(data)
            stored = self.store.signatures(since=since, up_to=last)
            self.dedup.restore(((r.article_id, r.story_id, self.dedup.decode(r.data), r.published_at, r.source) for r in stored), crowd)
            self.dedup.last_article_id = last
        tail = [(r.article_id, r.story_id, self.dedup.decode(r.data), r.published_at, r.source) for r in self.store.signatures(after=last)]
        self.dedup.replay(tail)
        self.dedup.evict(since)
        self._snapshot_at = last
        self._index_ready = True
        log.info("dedup index rebuilt: %d articles in the window (%d replayed after the snapshot)", len(self.dedup), len(tail))
        if len(tail) >= SNAPSHOT_EVERY:
            self.save_snapshot()
        return len(self.dedup)

    def housekeeping(self, now: datetime, snapshot: bool = True, force: bool = False) -> int:
        """Forget articles that left the dedup window and, if due, snapshot the statistics; returns how many left."""
        with self._write_lock:
            self.ensure_index()
            evicted = self.dedup.evict(now - self._window)
            if snapshot:
                self.save_snapshot(force=force)
        return evicted

    def save_snapshot(self, force: bool = False) -> bool:
        """Persist the dedup statistics if enough articles arrived since the last snapshot."""
        if not self._index_ready:
            return False
        fresh = self.dedup.last_article_id - self._snapshot_at
        if fresh <= 0 or (fresh < SNAPSHOT_EVERY and not force):
            return False
        self.store.save_snapshot(self.dedup.scheme, self.dedup.last_article_id, self.dedup.snapshot(), self.clock())
        self._snapshot_at = self.dedup.last_article_id
        return True

    # -- polling ---------------------------------------------------------------

    def due_feeds(self, now: datetime) -> list[FeedState]:
        return [
            f for f in self.feeds()
            if not f.disabled_reason and (f.next_poll_at is None or f.next_poll_at <= now) and f.id not in self._in_flight
        ]

    async def poll_round(self, now: datetime | None = None, due_only: bool = True, fetcher: Fetcher | None = None) -> list[PollReport]:
        """Poll every due feed (or every enabled feed) once, concurrently; one report per feed."""
        now = now or self.clock()
        self.housekeeping(now, snapshot=False)
        feeds = self.due_feeds(now) if due_only else [f for f in self.feeds() if not f.disabled_reason]
        if not feeds:
            return []
        own = fetcher is None
        fetcher = fetcher or Fetcher(self.config.settings.fetch, self.config.settings.allow_hosts, transport=self.transport)
        try:
            return list(await asyncio.gather(*(self.poll_feed(fetcher, f, now) for f in feeds)))
        finally:
            if own:
                await fetcher.aclose()
            with self._write_lock:
                self.save_snapshot()

    async def poll_feed(self, fetcher: Fetcher, feed: FeedState, now: datetime | None = None) -> PollReport:
        """Fetch, parse, extract, dedup and store one feed; errors end up on the feed, not raised."""
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
                    await self._write(self._update_feed, feed.id, decide.after_success(feed, result, None, now, sched), now)
                    return PollReport(feed.url, 304, 0, not_modified=True)
                parsed = parse_feed(result.final_url, result.content, result.headers)
                if parsed.warning:
                    log.info("%s: recoverable feed problem: %s", feed.url, parsed.warning)
                candidates = await self._prepare(fetcher, feed, parsed, now)
                change = decide.after_success(feed, result, parsed, now, sched)
                new = await self._write(self._commit, feed, parsed, candidates, change, now)
                return PollReport(feed.url, result.status, new)
            except FeedError as exc:
                log.warning("%s", exc)
                reached = not isinstance(exc, NetworkError)
                self._recent.append((host_of(feed.url), reached))
                rule = decide.after_failure if reached or not self.network_outage() else decide.during_outage
                await self._write(self._update_feed, feed.id, rule(feed, exc, now, sched), now)
                return PollReport(feed.url, getattr(exc, "status", None), 0, error=exc.message)
        finally:
            self._in_flight.discard(feed.id)

    def network_outage(self) -> bool:
        """True when the last polls all failed to reach their servers, across several hosts."""
        recent = list(self._recent)
        return len(recent) == OUTAGE_SAMPLE and not any(ok for _, ok in recent) and len({h for h, _ in recent}) >= 3

    async def _prepare(self, fetcher: Fetcher, feed: FeedState, parsed: ParsedFeed, now: datetime) -> list[_Candidate]:
        """Entries not stored yet, with their text (from the page when the feed's is short)."""
        with self.store.connect() as conn:
            known = self.store.known_guids(conn, feed.id, [e.guid for e in parsed.entries])
            fresh = [e for e in parsed.entries if e.guid not in known]
            known_urls = self.store.known_urls(conn, [e.url for e in fresh if e.url])
        fresh = [e for e in fresh if not e.url or e.url not in known_urls]
        ext = self.config.settings.extract
        pages = await asyncio.gather(
            *(self._page(fetcher, e) if ext.fetch_pages and needs_page(e, ext.min_feed_text_chars) else _none() for e in fresh)
        )
        candidates = []
        for entry, page in zip(fresh, pages, strict=True):
            text, from_page = choose_text(entry, page)
            title = entry.title or (page.title if page else "") or ""
            if not text and not title:
                continue
            published = entry.published or (page.published if page else None) or now
            if published > now + FUTURE_TOLERANCE:  # a feed's clock or typo; never let it sort ahead of real news
                published = now
            lang = entry.lang or (page.lang if page else None) or parsed.lang
            candidates.append(_Candidate(entry, text or title, title or text[:120], published, lang, from_page))
        # Oldest first (feeds list newest first): stories then grow in the order the news happened.
        return sorted(candidates, key=lambda c: (c.published, c.entry.guid))

    async def _page(self, fetcher: Fetcher, entry: Entry) -> PageText | None:
        assert entry.url
        try:
            result = await fetcher.fetch_page(entry.url)
        except FetchError as exc:
            log.info("article page unavailable, using feed text: %s", exc)
            return None
        pool = self._extractor()
        fast = self.config.settings.extract.fast
        if pool is None:
            return await asyncio.to_thread(extract_page, result.content, result.final_url, fast)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, extract_page, result.content, result.final_url, fast)
        except concurrent.futures.process.BrokenProcessPool:  # a worker died (e.g. out of memory): start afresh
            log.warning("%s: extraction worker died; restarting the pool", entry.url)
            self._pool = None
            return await asyncio.to_thread(extract_page, result.content, result.final_url, fast)

    async def _write(self, func: Callable[..., T], *args: Any) -> T:
        """Run a database write in a worker thread, one at a time, so the event loop keeps fetching."""

        def locked() -> T:
            with self._write_lock:
                return func(*args)

        return await asyncio.to_thread(locked)

    def _update_feed(self, feed_id: int, change: FeedUpdate, now: datetime) -> None:
        with self.store.transaction() as conn:
            self.store.apply_feed_update(conn, feed_id, change, now)

    def _commit(self, feed: FeedState, parsed: ParsedFeed, candidates: Sequence[_Candidate], change: FeedUpdate, now: datetime) -> int:
        """Store new articles, their signatures and story membership, then the feed's new state: one transaction."""
        self.ensure_index()  # rebuilt here if an earlier transaction was rolled back
        added: list[int] = []
        try:
            with self.store.transaction() as conn:
                # Re-check inside the transaction: another feed may have stored the same URL meanwhile.
                known = self.store.known_urls(conn, [c.entry.url for c in candidates if c.entry.url])
                seen_guids = self.store.known_guids(conn, feed.id, [c.entry.guid for c in candidates])
                for cand in candidates:
                    if cand.entry.guid in seen_guids or (cand.entry.url and cand.entry.url in known):
                        continue
                    article = Article(
                        feed_id=feed.id, guid=cand.entry.guid, url=cand.entry.url, title=cand.title, text=cand.text,
                        published_at=cand.published, first_seen_at=now, lang=cand.lang, source=cand.entry.source or feed.name,
                        content_hash=hashlib.sha256(normalize(f"{cand.title}\n{cand.text}").encode()).hexdigest(),
                        from_page=cand.from_page, summary_html=cand.entry.summary_html,
                    )
                    sig = self.dedup.sign(article.title, article.text)
                    decision = self.dedup.decide(sig, article.published_at, article.source)
                    article_id = self.store.insert_article(conn, article)
                    self.store.insert_signature(conn, article_id, self.dedup.scheme, self.dedup.encode(sig))
                    story_id = self._place(conn, article, article_id, sig, decision, now)
                    self.dedup.add(article_id, story_id, sig, article.published_at, article.source)
                    added.append(article_id)
                    if article.url:
                        known.add(article.url)
                    seen_guids.add(article.guid)
                self.store.apply_feed_update(conn, feed.id, change, now, title=parsed.title, site_url=parsed.site_url)
        except BaseException:
            if added:  # the rows were rolled back: the index rebuilds from storage before the next use
                self._index_ready = False
            raise
        if added:
            log.info("%s: %d new article(s)", feed.url, len(added))
        return len(added)

    def _place(self, conn: Connection, article: Article, article_id: int, sig: Signature, decision: Decision, now: datetime) -> int:
        if decision.story_id is None:
            return self.store.create_story(conn, article, article_id, now)
        story_id = decision.story_id
        self.store.add_member(conn, story_id, article_id, "report", decision.similarity, now)
        members = self.store.members(conn, story_id)
        previous = next(m.article_id for m in members if m.kind == "canonical")
        canonical = choose_canonical(members)
        self.store.update_story(conn, story_id, canonical, min(m.published_at for m in members), now)
        # Kind and similarity are relative to the canonical: a new canonical means recomputing them all.
        canon_sig = self._signature(conn, canonical.article_id, article_id, sig)
        for m in members:
            if m.article_id == canonical.article_id:
                self.store.set_member(conn, m.article_id, "canonical", 1.0)
            elif m.article_id == article_id or canonical.article_id != previous:
                kind, similarity = self.dedup.relation(self._signature(conn, m.article_id, article_id, sig), canon_sig)
                self.store.set_member(conn, m.article_id, kind, round(similarity, 4))
        return story_id

    def _signature(self, conn: Connection, article_id: int, new_id: int, new_sig: Signature) -> Signature:
        if article_id == new_id:
            return new_sig
        sig = self.dedup.signature_of(article_id)
        if sig is None:
            data = self.store.signature(conn, article_id)
            assert data is not None, f"article {article_id} has no stored signature"
            sig = self.dedup.decode(data)
        return sig

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

