"""The dedup index and the database, changed together under one lock.

``Ingest`` owns the index's lifecycle (rebuilt from storage on first use, old articles
evicted, learned statistics snapshotted) and the one transaction that stores feeds' new
articles: each is signed, decided against the index, inserted with its signature and story
membership, then learned from; each feed's new state is written in the same transaction, so a
crash means a re-fetch, never a loss. A rolled-back transaction makes the index rebuild before next use.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from .dedup import RESTORE_BATCH, Deduplicator, Placement, Signature, normalize
from .dedup.canonical import credible_time
from .dedup.index import ts
from .errors import SchemaMismatch
from .models import Article, Entry, FeedState, FeedUpdate, ParsedFeed, outlet_name
from .store import Joined, StoreProtocol, TransactionProtocol
from .text import paragraph_keys
from .timeline import canonical_detail, revision_detail

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 500  # articles between dedup snapshots (a restart replays at most this many)
MAX_POLLING_GAP = timedelta(hours=12)  # a feed failing for days must not thereby date its items back days


def content_hash(title: str, text: str) -> str:
    """What an article's content is compared by (``articles.content_hash``): case, accents and digit
    grouping aside (``dedup.normalize``), a changed title or text is a new version."""
    return hashlib.sha256(normalize(f"{title}\n{text}").encode()).hexdigest()


@dataclass(frozen=True)
class Candidate:
    """A new entry with its text chosen, before dedup."""

    entry: Entry
    text: str
    title: str
    published: datetime
    lang: str | None
    from_page: bool
    dated: bool = True  # False: neither the feed nor the page gave a date (``published`` is the poll's time)
    claim: int | None = None  # a stored article's id: its URL is this feed's site's, stored from another feed (re-credited)
    revises: int | None = None  # a stored article's id: this feed changed the entry (a revision, not a new article)
    keep_text: bool = False  # a revision of the title alone: the article's page could not be fetched again, its text stays


@dataclass(frozen=True)
class FeedBatch:
    """One feed's answer, ready to store: its new candidates and the feed's new state."""

    feed: FeedState
    parsed: ParsedFeed
    candidates: Sequence[Candidate]
    change: FeedUpdate
    now: datetime

    @property
    def source(self) -> str:
        """The outlet its articles come from: the name the config gives, else the feed's own title."""
        if self.feed.named:
            return self.feed.name
        return outlet_name(self.parsed.title) or self.feed.name

    @property
    def site(self) -> str:
        """The site its articles are served from: the one the feed names, else the feed's own address."""
        return self.parsed.site_url or self.feed.url

    def site_of(self, entry: Entry) -> str:
        """The site serving an entry's article: the outlet the entry names as its ``<source>`` (a feed
        aggregating others), else the feed's."""
        return entry.source_url or self.site


class Ingest:
    """The dedup index plus the writes that must change together with it."""

    def __init__(self, dedup: Deduplicator, store: StoreProtocol, clock: Callable[[], datetime]) -> None:
        """No I/O: the index is rebuilt from storage on first use (``ensure_index``)."""
        self.settings = dedup.settings
        self.store = store
        self.clock = clock
        self.dedup = dedup
        self.window = timedelta(hours=self.settings.window_hours)
        self.lock = threading.RLock()  # one writer: the database and the dedup index change together
        self._index_ready = False
        self._snapshot_at = 0
        self._gaps: dict[int, float | None] = {}  # the polling gap of each feed being committed (``_polling_gap``)

    def ensure_index(self) -> int:
        """The dedup index, rebuilt from storage if needed; returns how many articles it holds."""
        with self.lock:
            return self._ensure_index()

    def _ensure_index(self) -> int:
        """Rebuild the dedup index from storage (once); returns how many articles it holds.

        The newest snapshot gives the learned statistics; articles stored before it and still
        in the window are indexed as they were; articles stored after it are replayed in order,
        exactly as they were decided."""
        if self._index_ready:
            return len(self.dedup)
        self.dedup = Deduplicator(self.settings)  # afresh: an earlier transaction may have been rolled back
        foreign = self.store.signature_schemes() - {self.dedup.scheme}
        if foreign:
            raise SchemaMismatch(
                f"{self.store.url}: stored signatures use {sorted(foreign)[0]!r} but this configuration "
                f"makes {self.dedup.scheme!r} (settings.dedup num_perm, seed or shingle_size changed); "
                "restore the old values or start a new storage directory"
            )
        since = self.clock() - self.window
        snapshot = self.store.latest_snapshot(self.dedup.scheme)
        last = 0
        if snapshot is not None:
            last, data = snapshot
            crowd = self.dedup.load_snapshot(data)
            self.dedup.restore(self.store.signature_chunks(RESTORE_BATCH, since=since, up_to=last), crowd)
            self.dedup.last_article_id = last
        tail = [(r.article_id, r.story_id, self.dedup.decode(r.data), r.published_at, r.source, r.first_seen_at, r.text_length)
                for r in self.store.signatures(after=last)]
        self.dedup.replay(tail)
        self.dedup.evict(since)
        self.dedup.retire(self.store.retired_members(since))
        self.dedup.discredit(self.store.late_members(since))
        self._snapshot_at = last
        self._index_ready = True
        log.info("dedup index rebuilt: %d articles in the window (%d replayed after the snapshot)", len(self.dedup), len(tail))
        if len(tail) >= SNAPSHOT_EVERY:
            self.save_snapshot()
        return len(self.dedup)

    def housekeeping(self, now: datetime, snapshot: bool = True, force: bool = False) -> int:
        """Forget articles that left the dedup window and, if due, snapshot the statistics; returns how many left."""
        with self.lock:
            self.ensure_index()
            evicted = self.dedup.evict(now - self.window)
            if snapshot:
                self.save_snapshot(force=force)
        return evicted

    def save_snapshot(self, force: bool = False) -> bool:
        """Persist the dedup statistics if enough articles arrived since the last snapshot."""
        with self.lock:
            if not self._index_ready:
                return False
            fresh = self.dedup.last_article_id - self._snapshot_at
            if fresh <= 0 or (fresh < SNAPSHOT_EVERY and not force):
                return False
            self.store.save_snapshot(self.dedup.scheme, self.dedup.last_article_id, self.dedup.snapshot(), self.clock())
            self._snapshot_at = self.dedup.last_article_id
            return True

    def update_feeds(self, changes: Sequence[tuple[int, FeedUpdate, datetime]]) -> None:
        """Feeds' new states (after a 304 or an error), in one transaction."""
        with self.store.transaction() as tx:
            tx.apply_feed_updates((feed_id, change, now, None, None) for feed_id, change, now in changes)

    def commit(self, batches: Sequence[FeedBatch], inbox_ids: Sequence[int] = ()) -> list[int]:
        """Store feeds' new articles, their signatures and story membership, then each feed's new
        state: one transaction (which also takes the batches' ``inbox_ids`` out of the inbox, when
        they came from workers). Dated articles go one by one in publication order across the feeds
        (ties: by guid, then feed address), so stories depend neither on which feed answered last
        nor on how feeds are listed; undated ones then go as one batch (``_store_undated``).
        Returns how many articles each batch added."""
        self.ensure_index()  # rebuilt here if an earlier transaction was rolled back
        added, credited, revised = [0] * len(batches), [0] * len(batches), [0] * len(batches)
        self._gaps = {batch.feed.id: self._polling_gap(batch) for batch in batches}
        queue = sorted(
            ((not cand.dated, cand.published, cand.entry.guid, batch.feed.url, b, cand)
             for b, batch in enumerate(batches) for cand in batch.candidates),
            key=lambda item: item[:4],
        )
        # An article URL listed by several feeds of the round goes to the one whose site serves it,
        # else to the first listing it.
        chosen: dict[str, tuple[int, str, str]] = {}  # url -> (batch, guid, the site serving it as that entry says)
        for *_, guid, _url, b, cand in queue:
            url = cand.entry.url
            if url and cand.claim is None:
                held = chosen.get(url)
                if held is None or (_serves(batches[b].site_of(cand.entry), url) and not _serves(held[2], url)):
                    chosen[url] = (b, guid, batches[b].site_of(cand.entry))
        try:
            with self.store.transaction() as tx:
                # Re-check inside the transaction: another feed may have stored the same URL meanwhile.
                owners = tx.url_owners([c.entry.url for batch in batches for c in batch.candidates if c.entry.url])
                # By feed: a cluster's inbox may hold two answers of one feed (each entry is stored once).
                by_feed: dict[int, set[str]] = {}
                for batch in batches:
                    by_feed.setdefault(batch.feed.id, set()).update(c.entry.guid for c in batch.candidates)
                known = {feed_id: tx.known_guids(feed_id, guids) for feed_id, guids in by_feed.items()}
                seen = [known[batch.feed.id] for batch in batches]
                undated: list[tuple[FeedBatch, Candidate]] = []
                revisions: list[tuple[int, Candidate]] = []
                for _undated, _published, guid, _url, b, cand in queue:
                    url, batch = cand.entry.url, batches[b]
                    if cand.revises is not None:
                        revisions.append((b, cand))
                        continue
                    if guid in seen[b]:
                        continue
                    if url and url in owners:
                        # Stored from another feed: it stays one article, credited to the feed whose
                        # site serves it (a feed listing another outlet's URL first does not keep it).
                        article_id, site = owners[url]
                        if _serves(batch.site_of(cand.entry), url) and not _serves(site, url):
                            source = cand.entry.source or batch.source
                            tx.recredit_article(article_id, batch.feed.id, guid, source)
                            self.dedup.recredit(article_id, source)
                            owners[url] = (article_id, batch.site_of(cand.entry))
                            credited[b] += 1
                            seen[b].add(guid)
                        continue
                    if cand.claim is not None or (url and chosen.get(url, (None, None))[:2] != (b, guid)):
                        continue
                    if cand.dated:
                        self._store_article(tx, batch, cand)
                    else:
                        undated.append((batch, cand))
                    added[b] += 1
                    seen[b].add(guid)
                self._store_undated(tx, undated)
                for b, cand in revisions:
                    revised[b] += self._revise(tx, batches[b], cand)
                for batch in batches:  # a feed the config does not name goes by its title, once it has one
                    if batch.source != batch.feed.name:
                        tx.rename_feed(batch.feed.id, batch.feed.name, batch.source)
                tx.apply_feed_updates(
                    (batch.feed.id, batch.change, batch.now, batch.parsed.title, batch.parsed.site_url) for batch in batches
                )
                tx.consume_inbox(inbox_ids)
        except BaseException:
            if any(added) or any(credited):  # the rows were rolled back: the index rebuilds from storage before the next use
                self._index_ready = False
            raise
        for batch, n, m, r in zip(batches, added, credited, revised, strict=True):
            if n:
                log.info("%s: %d new article(s)", batch.feed.url, n)
            if r:
                log.info("%s: %d article(s) revised by the feed", batch.feed.url, r)
            if m:
                log.info("%s: %d article(s) its site serves, stored from another feed, credited to it", batch.feed.url, m)
        return added

    def _polling_gap(self, batch: FeedBatch) -> float | None:
        """How long (seconds) the feed went unpolled before this answer: since its last successful
        poll (at most ``MAX_POLLING_GAP``). A feed's first poll has no gap of its own: since the
        newest article first seen before it, from any feed (its backlog cannot predate what was
        seen already); None when nothing was (a new database: nothing to be first against)."""
        previous = batch.feed.last_success_at or self.dedup.newest_first_seen(before=batch.now)
        if previous is None:
            return None
        return min(max((batch.now - previous).total_seconds(), 0.0), MAX_POLLING_GAP.total_seconds())

    def _article(self, batch: FeedBatch, cand: Candidate) -> Article:
        # A date earlier than the poll by more than the feed's gap plus a margin is the feed's word
        # only: it is kept (shown), but the article counts as reported when first seen.
        credible = credible_time(ts(cand.published), ts(batch.now), self._gaps.get(batch.feed.id))
        return Article(
            feed_id=batch.feed.id, guid=cand.entry.guid, url=cand.entry.url, title=cand.title, text=cand.text,
            published_at=cand.published, first_seen_at=batch.now, lang=cand.lang, source=cand.entry.source or batch.source,
            content_hash=content_hash(cand.title, cand.text),
            from_page=cand.from_page, summary_html=cand.entry.summary_html,
            reported_at=None if credible == ts(cand.published) else batch.now,
        )

    def _store_article(self, tx: TransactionProtocol, batch: FeedBatch, cand: Candidate) -> None:
        """Sign, decide, insert and index one new article."""
        article = self._article(batch, cand)
        sig = self.dedup.sign(article.title, article.text, article.source)
        placement = self.dedup.decide(sig, article.published_at, article.source, article.first_seen_at, len(article.text), article.reported_at)
        article_id = self._insert(tx, article, sig)
        story_id = self._place(tx, article, article_id, placement, batch.now)
        self.dedup.add(article_id, story_id, placement)

    def _insert(self, tx: TransactionProtocol, article: Article, sig: Signature) -> int:
        article_id = tx.insert_article(article)
        tx.insert_signature(article_id, self.dedup.scheme, self.dedup.encode(sig))
        return article_id

    def _store_undated(self, tx: TransactionProtocol, items: Sequence[tuple[FeedBatch, Candidate]]) -> None:
        """Articles without dates that arrived together have no order of their own: they are decided
        as a batch, as ``aggregator eval`` does with an undated file (``Deduplicator.decide_batch``).
        Rows are inserted in the order decided, so a restart replays them in it; stories are written
        once the batch is settled (new ones carry a provisional id, minus the id of the article that
        started them, until then)."""
        if not items:
            return
        articles = [self._article(batch, cand) for batch, cand in items]
        decided = self.dedup.decide_batch(
            [(a.title, a.text, a.published_at, a.source, a.first_seen_at) for a in articles], lambda i, sig: self._insert(tx, articles[i], sig)
        )
        stored: dict[int, int] = {}  # provisional story id -> stored id
        for i, article_id, placement in decided:
            story, now = placement.story_id, items[i][0].now
            assert story is not None
            if story >= 0:
                self._place(tx, articles[i], article_id, placement, now)
            elif story not in stored:
                stored[story] = tx.create_story(articles[i], article_id, now)
            else:
                self._join(tx, stored[story], article_id, placement, now)
        for provisional, story_id in stored.items():
            self.dedup.rename_story(provisional, story_id)

    def _place(self, tx: TransactionProtocol, article: Article, article_id: int, placement: Placement, now: datetime) -> int:
        """Apply a placement: a new story, or the article joins one."""
        if placement.story_id is None:
            return tx.create_story(article, article_id, now)
        self._join(tx, placement.story_id, article_id, placement, now)
        return placement.story_id

    @staticmethod
    def _join(tx: TransactionProtocol, story_id: int, article_id: int, placement: Placement, now: datetime) -> None:
        settled = placement.settlement
        changed = tuple((m.article_id, m.kind, m.similarity) for m in settled.changed)
        canonical = placement.canonical(article_id)
        # Members change kind only when the canonical changes (``canonical.settle``): only then is
        # the one before read (a primary-key read), to say on the timeline who leads now and why.
        before = tx.story_canonical(story_id) if changed else None
        tx.join_story(story_id, article_id, Joined(settled.own.kind, settled.own.similarity, canonical,
                                                   placement.first_reported_at, changed), now)
        if before is not None and before != canonical:
            facts = tx.lead_facts([before, canonical, article_id])
            longest = max(f.text_length for f in facts.values())
            tx.add_story_event(story_id, now, "canonical", canonical, canonical_detail(facts[canonical], facts.get(before), longest))

    def _revise(self, tx: TransactionProtocol, batch: FeedBatch, cand: Candidate) -> bool:
        """A stored article its feed changed: the version it had is kept as a revision, the article
        takes the new one, and the story's timeline says what changed. Its story membership is not
        decided again, and its stored signature stays the first version's (the dedup index is the
        record of how stories were decided; a corrected figure is the same story). False: nothing
        changed after all (the page gave the text already stored)."""
        assert cand.revises is not None
        old = tx.article_version(cand.revises)
        if old is None:
            return False
        text = old.text if cand.keep_text else cand.text
        new_hash = content_hash(cand.title, text)
        if new_hash == old.content_hash or (cand.title == old.title and layout_only(old.text, text, cand.title, batch.parsed.repeated)):
            return False
        tx.revise_article(old, cand.title, text, new_hash, cand.from_page, cand.entry.summary_html, batch.now)
        if old.story_id is not None:
            tx.add_story_event(old.story_id, batch.now, "revised", old.article_id, revision_detail(old.title, old.text, cand.title, text))
        return True


def layout_only(old: str, new: str, title: str, repeated: frozenset[str]) -> bool:
    """Whether two versions of a text differ only in paragraphs its feed repeats across items."""
    if not repeated:
        return False
    return [k for k in paragraph_keys(old, title) if k not in repeated] == [k for k in paragraph_keys(new, title) if k not in repeated]


def page_date_credible(feed: FeedState, published: datetime, now: datetime) -> bool:
    """Whether an article page's date may date an entry its feed left undated: only when it is
    no earlier than the feed's last successful poll (its first: now) less ``CREDIBLE_MARGIN_S``.
    A page's stale metadata alone never dates an item back: it is dated when first seen."""
    gap = (now - feed.last_success_at).total_seconds() if feed.last_success_at else 0.0
    gap = min(max(gap, 0.0), MAX_POLLING_GAP.total_seconds())
    return credible_time(ts(published), ts(now), gap) == ts(published)


def claims(feed: FeedState, parsed: ParsedFeed, entries: Sequence[Entry], owners: dict[str, tuple[int, str | None]],
           now: datetime) -> list[Candidate]:
    """Entries whose URL is stored from another feed, when this feed's site serves it and that
    feed's does not: the article is to be credited to this feed (``Ingest.commit``)."""
    site = parsed.site_url or feed.url
    return [
        Candidate(e, "", e.title, now, None, False, claim=owners[e.url][0])
        for e in entries
        if e.url and e.url in owners and _serves(e.source_url or site, e.url) and not _serves(owners[e.url][1], e.url)
    ]


def _host(url: str | None) -> str:
    try:
        host = (urlsplit(url).hostname or "") if url else ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _serves(site: str | None, url: str) -> bool:
    """Whether a site serves an article URL: the same host, or one a subdomain of the other
    (``www.`` aside: www.example.org, example.org and news.example.org are one site)."""
    a, b = _host(site), _host(url)
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))
