"""The sliding window: one row per indexed article in column arrays, the two multimaps onto rows (LSH
band keys for the copy tier, rare terms for the report tier), stories as lists of rows, eviction
and the column-wise restore a restart takes. It also keeps what the canonical rule needs of every
member of a story still in the window, including members that have left it (``Fact``)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..models import SignatureChunk
from .hashing import band_keys
from .postings import MultiMap
from .signature import Signature, decode_columns
from .statistics import CROWDING_K, SnapshotCrowding, source_key
from .statistics import tf as log_tf
from .tokens import MAX_TERMS


def ts(when: datetime) -> float:
    """Seconds since the epoch (a naive datetime is UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


@dataclass(frozen=True)
class Fact:
    """What the canonical rule and the member kinds need of one story member: its publication and
    first-seen times (seconds since the epoch), its text length, and its signature as the index
    held it (None while its row is in the window: read from the row then)."""

    article_id: int
    published: float
    first_seen: float
    text_length: int
    signature: Signature | None = None


class Rows:
    """Column arrays with one row per indexed article (grown by doubling; untouched capacity costs
    no resident memory)."""

    def __init__(self, num_perm: int, capacity: int = 1024) -> None:
        self.capacity = 0
        self.high = 0  # rows ever handed out
        self.free: list[int] = []
        self.article = np.zeros(0, dtype=np.int64)
        self.story = np.zeros(0, dtype=np.int64)
        self.t = np.zeros(0, dtype=np.float64)  # published, seconds since the epoch
        self.first_seen = np.zeros(0, dtype=np.float64)  # first seen, seconds since the epoch
        self.text_length = np.zeros(0, dtype=np.int32)  # characters of text (the canonical rule)
        self.source = np.zeros(0, dtype=np.uint32)  # hash of the outlet's name (0: unknown)
        self.shingles = np.zeros(0, dtype=np.int32)
        self.alive = np.zeros(0, dtype=bool)
        self.minhash = np.zeros((0, num_perm), dtype=np.uint32)
        self.terms = np.zeros((0, MAX_TERMS), dtype=np.uint32)  # padded with 0 (weight 0)
        self.tf = np.zeros((0, MAX_TERMS), dtype=np.float16)  # 1 + log(count), 0 in padding (3 significant digits suffice)
        self.crowd = np.zeros((0, CROWDING_K), dtype=np.float32)  # each article's best similarities so far
        self._grow(capacity)

    _COLUMNS = ("article", "story", "t", "first_seen", "text_length", "source", "shingles", "alive", "minhash", "terms", "tf", "crowd")

    def _grow(self, capacity: int) -> None:
        for name in self._COLUMNS:
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        self.capacity = capacity

    def take_many(self, k: int) -> np.ndarray:
        """``k`` rows: freed ones first (the most recently freed first), then new ones."""
        reused = self.free[::-1][:k]
        del self.free[len(self.free) - len(reused) :]
        fresh = k - len(reused)
        if self.high + fresh > self.capacity:
            self._grow(max(2 * self.capacity, self.high + fresh))
        self.high += fresh
        return np.array(reused + list(range(self.high - fresh, self.high)), dtype=np.int64)


@dataclass(frozen=True)
class NewRows:
    """Articles to write into the window, one entry per article (``Window.fill``)."""

    ids: np.ndarray
    stories: np.ndarray
    t: np.ndarray
    first_seen: np.ndarray
    text_length: np.ndarray
    sources: np.ndarray
    shingles: np.ndarray
    minhash: np.ndarray
    terms: np.ndarray  # (n, MAX_TERMS), 0 in padding
    counts: np.ndarray  # (n, MAX_TERMS), 0 in padding
    crowd: np.ndarray


def _as_row(minhash: np.ndarray, shingles: int, terms: np.ndarray, tf16: np.ndarray) -> Signature:
    """A signature from what a row keeps: its terms' counts back from their float16 1 + log(count)
    (no shingle hashes, no index keys)."""
    counts = np.where(tf16 >= 1.0, np.exp(tf16 - 1.0), tf16).astype(np.float32)
    empty = np.zeros(0, dtype=np.uint32)
    return Signature(minhash, shingles, empty, terms, counts, empty)


def _release_freed_memory() -> None:
    """Hand freed heap pages back to the OS. glibc keeps the pages of the index's large numpy
    temporaries (multimap merges) otherwise, and a long-running daemon's resident size creeps up."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class Window:
    """The articles of the sliding window and the stories they belong to."""

    def __init__(self, num_perm: int, bands: tuple[int, int], window_hours: float) -> None:
        self.num_perm = num_perm
        self.bands = bands
        self.window_s = window_hours * 3600.0
        self.rows = Rows(num_perm)
        self.row_of: dict[int, int] = {}  # article id -> row
        self.stories: dict[int, list[int]] = {}  # story id -> member rows, in the order they joined
        self.retired: dict[int, list[Fact]] = {}  # story id -> its members that left the window (the story has members in it)
        self.postings = MultiMap()  # rare-term hash -> rows (the report tier's candidates)
        self.band_map = MultiMap()  # MinHash band hash -> rows (the copy tier's candidates)
        self._quarantine: list[int] = []  # rows evicted but still named in the multimaps
        self._oldest = float("inf")  # earliest publication time in the window
        self.last_article_id = 0  # every article up to this id has been learned from

    def __len__(self) -> int:
        return len(self.row_of)

    def in_window(self, t: float, other: np.ndarray) -> np.ndarray:
        inside: np.ndarray = np.abs(t - other) <= self.window_s
        return inside

    def band_keys(self, minhash: np.ndarray) -> np.ndarray:
        return band_keys(minhash, self.bands)

    # -- writing rows ---------------------------------------------------------------------------

    def add(self, article_id: int, story_id: int, sig: Signature, published: float, first_seen: float, text_length: int,
            source: int, crowd_row: np.ndarray | None, keys: np.ndarray | None = None) -> None:
        """Write one article's row (``fill``) and post its multimap entries (``keys``: its band keys, if known)."""
        n = min(len(sig.terms), MAX_TERMS)
        terms = np.zeros((1, MAX_TERMS), dtype=np.uint32)
        counts = np.zeros((1, MAX_TERMS), dtype=np.float32)
        terms[0, :n], counts[0, :n] = sig.terms[:n], sig.counts[:n]
        (row,) = self.fill(NewRows(
            np.array([article_id], dtype=np.int64), np.array([story_id], dtype=np.int64), np.array([published]),
            np.array([first_seen]), np.array([text_length], dtype=np.int32), np.array([source], dtype=np.uint32),
            np.array([sig.shingles], dtype=np.int32), sig.minhash[None, :], terms, counts,
            (np.zeros(CROWDING_K, dtype=np.float32) if crowd_row is None else crowd_row)[None, :],
        ))
        self.postings.add(sig.keys, row)
        self.band_map.add(self.band_keys(sig.minhash) if keys is None else keys, row)

    def fill(self, new: NewRows) -> list[int]:
        """Write one row per article, column by column; each article joins its story. Returns the rows taken."""
        rows = self.rows
        at = rows.take_many(len(new.ids))
        rows.article[at], rows.story[at], rows.t[at], rows.source[at] = new.ids, new.stories, new.t, new.sources
        rows.first_seen[at], rows.text_length[at] = new.first_seen, new.text_length
        rows.shingles[at] = new.shingles
        rows.alive[at] = True
        rows.minhash[at] = new.minhash
        rows.terms[at], rows.tf[at] = new.terms, log_tf(new.counts)
        rows.crowd[at] = new.crowd
        taken: list[int] = at.tolist()
        self.row_of.update(zip(new.ids.tolist(), taken, strict=True))
        stories_of = self.stories
        for story_id, row in zip(new.stories.tolist(), taken, strict=True):
            members = stories_of.get(story_id)
            if members is None:
                stories_of[story_id] = [row]
            else:
                members.append(row)
        self._oldest = min(self._oldest, float(new.t.min()))
        self.last_article_id = max(self.last_article_id, int(new.ids.max()))
        return taken

    # -- stories --------------------------------------------------------------------------------

    def leave(self, row: int, story_id: int) -> None:
        members = self.stories[story_id]
        members.remove(row)
        if not members:
            del self.stories[story_id]

    def join(self, row: int, story_id: int) -> None:
        """``row`` joins a story; members stay in the order they were indexed (article ids rise)."""
        members = self.stories.setdefault(story_id, [])
        members.append(row)
        if len(members) > 1 and self.rows.article[members[-2]] > self.rows.article[row]:
            members.sort(key=lambda r: int(self.rows.article[r]))
        self.rows.story[row] = story_id

    def rename_story(self, old: int, new: int) -> None:
        """A story's id changes (a batch's provisional id becomes the stored one)."""
        members = self.stories.pop(old)
        self.rows.story[members] = new
        self.stories.setdefault(new, []).extend(members)
        if old in self.retired:
            self.retired.setdefault(new, []).extend(self.retired.pop(old))

    def move(self, article_ids: Iterable[int], story_id: int) -> int:
        """Articles now belong to another story (the reader's split or merge): their rows, and
        their facts among the members that left the window, go with them. Returns how many rows moved."""
        moving = set(article_ids)
        moved = 0
        for article_id in sorted(moving):
            row = self.row_of.get(article_id)
            if row is None or int(self.rows.story[row]) == story_id:
                continue
            self.leave(row, int(self.rows.story[row]))
            self.join(row, story_id)
            moved += 1
        for old in [s for s in self.retired if s != story_id]:
            going = [f for f in self.retired[old] if f.article_id in moving]
            if going:
                self.retired[old] = [f for f in self.retired[old] if f.article_id not in moving]
                self.retired.setdefault(story_id, []).extend(going)
        for gone in [s for s, facts in self.retired.items() if not facts or s not in self.stories]:
            del self.retired[gone]  # (as in ``evict``: only stories with members in the window keep them)
        return moved

    def facts(self, story_id: int) -> Iterator[Fact]:
        """Every member of a story the window holds: its rows, then the members that left it."""
        rows = self.rows
        for row in self.stories.get(story_id, ()):
            yield Fact(int(rows.article[row]), float(rows.t[row]), float(rows.first_seen[row]), int(rows.text_length[row]))
        yield from self.retired.get(story_id, ())

    def signature_of(self, article_id: int) -> Signature | None:
        """The signature of an indexed article (without shingle hashes and index keys), if still in the window."""
        row = self.row_of.get(article_id)
        return None if row is None else self._row_signature(row)

    @staticmethod
    def row_form(sig: Signature) -> Signature:
        """A signature as a row keeps it (what ``signature_of`` gives): at most MAX_TERMS terms,
        their counts through the row's float16 1 + log(count)."""
        n = min(len(sig.terms), MAX_TERMS)
        return _as_row(sig.minhash.copy(), int(sig.shingles), sig.terms[:n].copy(), log_tf(sig.counts[:n]).astype(np.float16))

    def _row_signature(self, row: int) -> Signature:
        rows = self.rows
        n = int(np.count_nonzero(rows.tf[row]))
        return _as_row(rows.minhash[row].copy(), int(rows.shingles[row]), rows.terms[row, :n].copy(), rows.tf[row, :n])

    def retire(self, facts: Iterable[tuple[int, Fact]]) -> None:
        """Members that left the window before this index was built (a restart), as (story, fact):
        kept for the stories that still have members in it."""
        for story_id, fact in facts:
            if story_id in self.stories:
                kept = self.retired.setdefault(story_id, [])
                if all(f.article_id != fact.article_id for f in kept):  # (the replayed tail's were retired by eviction)
                    kept.append(fact)

    # -- eviction and restore -------------------------------------------------------------------

    def evict(self, before: datetime) -> int:
        """Forget articles published before ``before`` (they stay in the database); returns how many."""
        cut = ts(before)
        if cut <= self._oldest:
            return 0
        rows = self.rows
        live = rows.alive[: rows.high]
        gone = np.nonzero(live & (rows.t[: rows.high] < cut))[0]
        left = list(zip(gone.tolist(), rows.article[gone].tolist(), rows.story[gone].tolist(), strict=True))
        for row, article_id, story_id in left:
            del self.row_of[article_id]
            self.leave(row, story_id)
        # The canonical rule still needs the members that left while their story has members in the
        # window (their rows stay intact until reused); a story wholly gone is forgotten.
        for row, article_id, story_id in left:
            if story_id in self.stories:
                fact = Fact(article_id, float(rows.t[row]), float(rows.first_seen[row]), int(rows.text_length[row]), self._row_signature(row))
                self.retired.setdefault(story_id, []).append(fact)
        for story_id in [s for s in self.retired if s not in self.stories]:
            del self.retired[story_id]
        rows.alive[gone] = False
        rows.crowd[gone] = 0.0
        self._quarantine += gone.tolist()
        remaining = rows.t[: rows.high][rows.alive[: rows.high]]
        self._oldest = float(remaining.min()) if len(remaining) else float("inf")
        if len(self._quarantine) >= max(1024, len(self.row_of) // 4):
            # Drop the evicted rows' multimap entries in one pass; only then may their rows be reused.
            self.postings.compact(lambda r: rows.alive[r])
            self.band_map.compact(lambda r: rows.alive[r])
            rows.free += self._quarantine
            self._quarantine = []
        if len(gone):
            _release_freed_memory()
        return len(gone)

    def restore(self, chunks: Iterable[SignatureChunk], crowd: SnapshotCrowding) -> int:
        """Index articles already counted in the loaded statistics (no learning, no scoring), chunk
        by chunk of stored signatures, decoded and written column-wise: the startup path. ``crowd``
        holds the snapshot's crowding rows. Returns how many were indexed."""
        done = 0
        entries: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"postings": [], "bands": []}
        sources: dict[str | None, int] = {}
        for chunk in chunks:
            fresh = np.fromiter((a not in self.row_of for a in chunk.article_ids.tolist()), dtype=bool, count=len(chunk.article_ids))
            if not fresh.all():
                chunk = chunk.select(fresh)
            if not len(chunk.article_ids):
                continue
            cols = decode_columns(chunk.data, self.num_perm)
            source_keys = np.array(
                [sources[x] if x in sources else sources.setdefault(x, source_key(x)) for x in chunk.sources], dtype=np.uint32
            )
            taken = self.fill(NewRows(chunk.article_ids, chunk.story_ids, chunk.published, chunk.first_seen, chunk.text_lengths,
                                      source_keys, cols.shingles, cols.minhash, cols.terms, cols.counts, crowd.of(chunk.article_ids)))
            at32 = np.array(taken, dtype=np.int32)
            entries["postings"].append((cols.keys, np.repeat(at32, cols.key_counts)))
            bands = self.band_keys(cols.minhash)
            entries["bands"].append((bands.ravel(), np.repeat(at32, bands.shape[1])))
            done += len(taken)
        # The multimap entries go in at the end, as one sorted run each (in article order, like ``add``).
        for name, multimap in (("postings", self.postings), ("bands", self.band_map)):
            if entries[name]:
                multimap.add_many(np.concatenate([k for k, _ in entries[name]]), np.concatenate([r for _, r in entries[name]]))
        return done
