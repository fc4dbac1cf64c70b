"""``Deduplicator``: signs articles, decides where each goes (a complete ``Placement``: the story, the
article's kind, the story's canonical and the member kinds that change), and learns from each
placement it is given back. Composes the statistics, the window and the rule; no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import numpy as np

from ..config import DedupSettings
from ..models import SignatureChunk
from . import batch
from .canonical import NEW_ARTICLE, Member, Settlement, settle
from .hashing import lsh_bands, minhash_affine32, permutations, shingle_hashes
from .index import Fact, Window, ts
from .rule import COPY_LSH_THRESHOLD, Decision, Rule, Scored, top_terms
from .signature import Signature, decode, encode, scheme
from .statistics import CROWDING_K, SnapshotCrowding, Statistics, boilerplate_key, source_key
from .statistics import tf as log_tf
from .tokens import EXACT_WEIGHTS, MAX_TERMS, TokenCache, weigh_plain, words

COPY_MIN_SHINGLES = 6  # fewer distinctive body shingles: use title + body


@dataclass(frozen=True)
class Placement:
    """Where an article goes and what that changes, as ``decide`` found it; ``add`` applies it.

    ``settlement.canonical_id`` is ``NEW_ARTICLE`` when the article itself becomes (or, for a new
    story, is) the canonical. ``version``: the index state it was computed on (``add`` recomputes
    the learning updates of a placement the index has moved on from)."""

    decision: Decision
    settlement: Settlement
    signature: Signature
    published: datetime
    first_seen: datetime
    text_length: int
    source: str | None
    scored: Scored
    version: int
    reported: datetime | None = None  # its first sighting, where its date was not credible (``canonical.credible_time``)

    @property
    def story_id(self) -> int | None:
        return self.decision.story_id

    @property
    def kind(self) -> Literal["new", "copy", "report"]:
        return self.decision.kind

    @property
    def similarity(self) -> float:
        return self.decision.similarity

    @property
    def matched_article_id(self) -> int | None:
        return self.decision.matched_article_id

    @property
    def first_reported_at(self) -> datetime:
        return datetime.fromtimestamp(self.settlement.first_reported, timezone.utc)

    def canonical(self, article_id: int) -> int:
        """The story's canonical, once the article is stored as ``article_id``."""
        return article_id if self.settlement.canonical_id == NEW_ARTICLE else self.settlement.canonical_id


class Deduplicator:
    """The in-memory candidate index over the sliding window, and the assignment rule."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self.scheme = scheme(settings)
        self.stats = Statistics(settings)
        self.window = Window(settings.num_perm, lsh_bands(COPY_LSH_THRESHOLD, settings.num_perm), settings.window_hours)
        self.rule = Rule(settings, self.stats, self.window)
        self._permutations = permutations(settings.num_perm, settings.seed)
        self._tokens = TokenCache()
        self._version = 0  # changes whenever the index learns or forgets
        # Members whose date was not credible -> the time they count as reported (their first
        # sighting): the canonical rule's only input the window's rows do not hold (rare).
        self.late: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.window)

    @property
    def last_article_id(self) -> int:
        """Every article up to this id has been learned from."""
        return self.window.last_article_id

    @last_article_id.setter
    def last_article_id(self, value: int) -> None:
        self.window.last_article_id = value

    @property
    def decay_per_day(self) -> float:
        """The time decay now in force (learned from the stream; see ``Statistics.learn_gap``)."""
        return self.stats.decay_per_day

    # -- signatures ------------------------------------------------------------------------------

    def sign(self, title: str, text: str, source: str | None = None) -> Signature:
        """The article's signature, given what the index has seen so far (it filters the boilerplate
        of its outlet, ``source``: pass the same one to ``decide``)."""
        title_tokens, text_tokens = words(title), words(text)  # tokenised once, used for terms and shingles
        try:
            if not EXACT_WEIGHTS:
                raise KeyError
            counts = self._tokens.weigh(title_tokens, text_tokens)
            top = sorted(counts)  # heaviest first, ties by term: two stable sorts, no key tuples
            top.sort(key=counts.__getitem__, reverse=True)
            del top[MAX_TERMS:]
            terms = np.fromiter(map(self._tokens.term_hash.__getitem__, top), dtype=np.uint32, count=len(top))
        except KeyError:
            import zlib

            counts = weigh_plain(title_tokens, text_tokens)
            top = sorted(counts, key=lambda t: (-counts[t], t))[:MAX_TERMS]
            terms = np.fromiter([zlib.crc32(t.encode("utf-8")) for t in top], dtype=np.uint32, count=len(top))
        tf_counts = np.fromiter(map(counts.__getitem__, top), dtype=np.float32, count=len(top))
        k = self.settings.shingle_size
        body_hashes = shingle_hashes(text_tokens, k, self._tokens)
        salt, limit = boilerplate_key(source_key(source))
        # Counting this article itself, a shingle is boilerplate once more than ``limit`` carry it.
        keep = body_hashes[self.stats.seen(body_hashes, salt) < limit]
        if len(keep) < COPY_MIN_SHINGLES:
            both = shingle_hashes(title_tokens + text_tokens, k, self._tokens)
            keep = both[self.stats.seen(both, salt) <= limit]
            keep = keep if len(keep) else both
        if not len(keep):
            keep = np.zeros(1, dtype=np.uint32)  # crc32 of the empty shingle
        values = minhash_affine32(keep, self._permutations)
        keys = top_terms(terms, log_tf(tf_counts), self.stats.idf(terms, np.ones(len(terms))))
        return Signature(values, len(keep), body_hashes, terms, tf_counts, keys.astype(np.uint32))

    def encode(self, sig: Signature) -> bytes:
        return encode(sig, self.settings.seed)

    @staticmethod
    def decode(data: bytes) -> Signature:
        return decode(data)

    def containment(self, a: Signature, b: Signature) -> tuple[float, float]:
        """(estimated Jaccard, estimated share of the smaller shingle set found in the other)."""
        return self.rule.containment(a, b)

    def cosine(self, a: Signature, b: Signature) -> float:
        """TF-IDF cosine of two articles under the current document frequencies."""
        return self.rule.cosine(a, b)

    def relation(self, a: Signature, b: Signature) -> tuple[Literal["copy", "report"], float]:
        """How two articles relate: ('copy', estimated Jaccard) or ('report', cosine)."""
        return self.rule.relation(a, b)

    def signature_of(self, article_id: int) -> Signature | None:
        """The signature of an indexed article (without shingle hashes and index keys), if still in the window."""
        return self.window.signature_of(article_id)

    # -- placing ---------------------------------------------------------------------------------

    def decide(self, sig: Signature, published: datetime, source: str | None = None, first_seen: datetime | None = None,
               text_length: int = 0, reported: datetime | None = None) -> Placement:
        """Where this article goes, and what that changes in its story. Does not change the index.
        ``reported``: when it counts as reported, where its date is not credible (``credible_time``):
        being first is decided on it; matching stories still goes by ``published``."""
        scored = self.rule.score(sig, published, source_key(source))
        first_seen = first_seen or published
        new = Member(NEW_ARTICLE, ts(published), ts(first_seen), text_length, None if reported is None else ts(reported))
        settlement = self._settle(scored.decision.story_id, new, {NEW_ARTICLE: sig})
        return Placement(scored.decision, settlement, sig, published, first_seen, text_length, source, scored, self._version, reported)

    def _settle(self, story_id: int | None, new: Member, exact: dict[int, Signature], leave_out: frozenset[int] = frozenset()) -> Settlement:
        """``settle`` over the story's members the window knows (but ``leave_out``)."""
        facts = {} if story_id is None else {f.article_id: f for f in self.window.facts(story_id) if f.article_id not in leave_out}
        facts.pop(new.article_id, None)
        late = self.late
        members = [Member(f.article_id, f.published, f.first_seen, f.text_length, late.get(f.article_id)) for f in facts.values()]

        def signature(article_id: int) -> Signature:
            found = exact.get(article_id)
            if found is None:
                fact = facts[article_id]
                found = fact.signature if fact.signature is not None else self.window.signature_of(article_id)
            assert found is not None, f"article {article_id} is neither in the window nor retired"
            return found

        return settle(members, new, lambda a, b: self.rule.relation(signature(a), signature(b)))

    def add(self, article_id: int, story_id: int, placement: Placement) -> None:
        """Index an article as a member of a story, as ``placement`` (from ``decide``) placed it, and
        learn from it."""
        p = placement
        scored = p.scored if p.version == self._version else self.rule.score(p.signature, p.published, source_key(p.source))
        if p.reported is not None:
            self.late[article_id] = ts(p.reported)
        self._learn(article_id, story_id, p.signature, p.published, p.source, p.first_seen, p.text_length, scored)

    def learn(self, article_id: int, story_id: int, sig: Signature, published: datetime, source: str | None = None,
              first_seen: datetime | None = None, text_length: int = 0) -> None:
        """Index and learn from an article whose story is known already (a replay, a rebuild): ``add``
        without the placement's canonical part, which only storage needs."""
        self._learn(article_id, story_id, sig, published, source, first_seen or published, text_length,
                    self.rule.score(sig, published, source_key(source)))

    def _learn(self, article_id: int, story_id: int, sig: Signature, published: datetime, source: str | None, first_seen: datetime,
               text_length: int, scored: Scored) -> None:
        if article_id in self.window.row_of:
            return
        key = source_key(source)
        self._version += 1
        # Document frequencies learn from every article but copies, in order: a reprint is not
        # new evidence that its words are common (twenty reprints made a story's own words so
        # common that a rewrite's rarest terms no longer found it).
        decision = scored.decision
        if decision.kind != "copy" and scored.confident_gap is not None:
            self.stats.learn_gap(scored.confident_gap)
        if decision.kind != "copy":
            self.stats.count_terms(sig.terms)
        # Boilerplate counts, per outlet (``boilerplate_key``): what an outlet repeats across its
        # stories. A copy of its own article (the same text in several section feeds) or, with
        # outlets unknown, of any article, is that article again, not a repetition; counted, the
        # fifth repost found its own text boilerplate.
        if len(sig.shingle_hashes) and not (decision.kind == "copy" and self._same_outlet(key, decision.matched_article_id)):
            self.stats.count_shingles(sig.shingle_hashes, key)
        crowd_row = scored.query_row
        rows = self.window.rows
        if decision.kind == "copy" and decision.matched_article_id in self.window.row_of:
            # A copy says nothing about how crowded its story's neighbourhood is: it neither raises
            # the members' crowding (with similarities near 1, four reprints locked every
            # independent report out of their story) nor keeps its own (near 1 against its
            # original): it takes its original's.
            crowd_row = rows.crowd[self.window.row_of[decision.matched_article_id]].copy()
        elif scored.member_crowd is not None:
            rows.crowd[scored.member_rows] = scored.member_crowd
        self.window.add(article_id, story_id, sig, ts(published), ts(first_seen), text_length, key, crowd_row, scored.band_keys)

    def _same_outlet(self, source: int, article_id: int | None) -> bool:
        """Whether an indexed article is by this outlet (an unknown outlet counts as the same)."""
        row = self.window.row_of.get(article_id) if article_id is not None else None
        return row is None or not source or int(self.window.rows.source[row]) == source

    # -- undated batches -------------------------------------------------------------------------

    def batch_order(self, items: Sequence[batch.Item]) -> list[int]:
        """See ``batch.batch_order``."""
        return batch.batch_order(self, items)

    def decide_batch(self, items: Sequence[batch.Item], index: Callable[[int, Signature], int]) -> list[tuple[int, int, Placement]]:
        """Decide and index articles (title, text, published, source, first seen) that arrived
        together without dates: ``batch_order``, then each signed, decided and indexed in that order,
        then ``batch.refine_batch``. ``index(i, signature)`` returns item i's article id just before
        it is indexed (the daemon stores its row then, so ids follow the order decided). Returns
        (item, article id, final placement) in the order decided, each settled as if the batch's
        articles joined their stories one by one in that order; a new story carries the provisional
        id minus the id of the article that started it."""
        order = self.batch_order(items)
        placed: list[tuple[int, Signature, datetime, str | None, Decision]] = []
        first: list[tuple[datetime, int, Scored]] = []
        crowding = 0.0
        for i in order:
            title, text, published, source, first_seen = items[i]
            sig = self.sign(title, text, source)
            scored = self.rule.score(sig, published, source_key(source))
            article_id = index(i, sig)
            story = scored.decision.story_id
            self._learn(article_id, -article_id if story is None else story, sig, published, source, first_seen, len(text), scored)
            placed.append((article_id, sig, published, source, scored.decision))
            first.append((first_seen, len(text), scored))
            crowding += self.crowding_of([article_id])
        final = batch.refine_batch(self, placed, crowding / len(placed)) if placed else []
        out: list[tuple[int, int, Placement]] = []
        pending = {p[0] for p in placed}  # stored, but not yet a member of its story (a new story: not yet started)
        for i, (article_id, sig, published, source, _first), (first_seen, length, scored), decision in zip(order, placed, first, final, strict=True):
            pending.discard(article_id)
            settlement = self._settle(decision.story_id, Member(article_id, ts(published), ts(first_seen), length), {article_id: sig},
                                      frozenset(pending))
            out.append((i, article_id, Placement(decision, settlement, sig, published, first_seen, length, source, scored, -1)))
        return out

    def rename_story(self, old: int, new: int) -> None:
        """A story's id changes (a batch's provisional id becomes the stored one)."""
        self.window.rename_story(old, new)

    def move(self, article_ids: Iterable[int], story_id: int) -> int:
        """Articles now belong to another story (the reader's split or merge): later articles see
        them there, so two halves of a split story stay two stories (an article close to both joins
        one: the rule places an article in one story and never joins two). Returns how many rows moved."""
        self._version += 1
        return self.window.move(article_ids, story_id)

    def crowding_of(self, article_ids: Sequence[int]) -> float:
        """Mean crowding of indexed articles (see ``batch.refine_batch``)."""
        at = [self.window.row_of[a] for a in article_ids]
        return float(self.window.rows.crowd[at].astype(np.float64).mean()) if at else 0.0

    # -- the window over time --------------------------------------------------------------------

    def evict(self, before: datetime) -> int:
        """Forget articles published before ``before`` (they stay in the database); returns how many."""
        gone = self.window.evict(before)
        if gone:
            self._version += 1
            if self.late:
                kept = self.window.row_of.keys() | {f.article_id for facts in self.window.retired.values() for f in facts}
                self.late = {a: t for a, t in self.late.items() if a in kept}
        return gone

    def newest_first_seen(self, before: datetime) -> datetime | None:
        """The latest first sighting, before ``before``, of an article the window holds (None: none)."""
        rows = self.window.rows
        seen = rows.first_seen[: rows.high][rows.alive[: rows.high]]
        seen = seen[seen < ts(before)]
        return datetime.fromtimestamp(float(seen.max()), timezone.utc) if len(seen) else None

    def recredit(self, article_id: int, source: str) -> None:
        """An indexed article's outlet changes (it is credited to the feed whose site serves it)."""
        row = self.window.row_of.get(article_id)
        if row is not None:
            self.window.rows.source[row] = source_key(source)

    def discredit(self, members: Iterable[tuple[int, datetime]]) -> None:
        """Stored members whose date was not credible, as (article id, when it counts as reported):
        a restart's, before the window is restored (see ``decide``)."""
        self.late.update((article_id, ts(when)) for article_id, when in members)

    def snapshot(self) -> bytes:
        """Document frequencies, boilerplate counts, crowding scores and story gaps, as bytes."""
        ids = np.array(sorted(self.window.row_of), dtype=np.int64)
        crowd = self.window.rows.crowd[[self.window.row_of[a] for a in ids.tolist()]] if len(ids) else np.zeros((0, CROWDING_K), np.float32)
        return self.stats.snapshot(ids, crowd)

    def load_snapshot(self, data: bytes) -> SnapshotCrowding:
        """Restore the statistics; returns the crowding rows of the articles indexed at snapshot time."""
        self._version += 1
        return self.stats.load_snapshot(data)

    def restore(self, chunks: Iterable[SignatureChunk], crowd: SnapshotCrowding) -> int:
        """Index stored articles already counted in the loaded statistics (see ``Window.restore``)."""
        self._version += 1
        return self.window.restore(chunks, crowd)

    def retire(self, members: Iterable[tuple[int, int, datetime, datetime, int, bytes]]) -> None:
        """Members (story, article, published, first seen, text length, stored signature) that were
        published before the window of a restart: the canonical rule still counts them while their
        story has members in the window."""
        self.window.retire(
            (story, Fact(article, ts(published), ts(first_seen), length, self.window.row_form(decode(data))))
            for story, article, published, first_seen, length, data in members
        )

    def replay(self, items: Iterable[tuple[int, int, Signature, datetime, str | None, datetime, int]]) -> None:
        """Learn from and index articles stored after the last snapshot, exactly as when they arrived:
        (article id, story id, signature, published, source, first seen, text length)."""
        for article_id, story_id, sig, published, source, first_seen, text_length in items:
            self.learn(article_id, story_id, sig, published, source, first_seen, text_length)
