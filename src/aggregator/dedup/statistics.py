"""What the index learns from the stream, bounded however long the daemon runs: document frequencies
(term weights), per-outlet boilerplate shingle counts, and the hourly histogram the time decay is
learned from; plus their snapshot, so a restart replays only what came after it."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..config import DedupSettings
from .signature import SIGNATURE_VERSION

IDF_POWER = 0.5
MAX_DF_RATIO = 0.3  # terms in more than this share of articles carry no weight ...
MAX_DF_MIN_DOCS = 200  # ... once this many articles have been seen
PRIOR_DOCS = 20.0  # see Statistics.idf
CROWDING_K = 5  # neighbours in an article's crowding score (kept by the index, saved in the snapshot)
# The time decay adapts to the stream (see Statistics.learn_gap): how far apart in time an article and
# its most similar earlier article are, when they are very similar (cosine >= CONFIDENT_SIM), tells
# how long this stream's stories last. When 90% of such pairs are less than H hours apart, the
# decay per day is decay_per_day * 24 / H, between 1x and MAX_DECAY_FACTOR x.
CONFIDENT_SIM = 0.4
GAP_QUANTILE = 0.9
GAP_HOURS = 73  # histogram of those gaps, one bucket per hour (the last: 72 h and more)
GAP_MIN_PAIRS = 20.0  # fewer observed pairs: the configured decay
GAP_HALVING = 2000.0  # the histogram is halved at this total, so it follows the recent stream
MAX_DECAY_FACTOR = 6.0
BOILERPLATE_DOCS = 16  # a shingle seen in this many earlier articles is boilerplate (outlet unknown) ...
BOILERPLATE_DOCS_PER_SOURCE = 4  # ... or in this many of the same outlet's
DF_BITS = 22  # hashed document-frequency table: 4 Mi float32 slots
SHINGLE_BITS = 24  # hashed boilerplate-shingle counts: 16 Mi saturating bytes ...
SHINGLE_HALVING = 1 << 15  # ... halved every this many articles, so "boilerplate" means "recently common"


def source_key(source: str | None) -> int:
    """An outlet's name as a nonzero 32-bit key (0: unknown)."""
    return zlib.crc32(source.encode("utf-8")) | 1 if source else 0


def boilerplate_key(source: int) -> tuple[np.uint32, int]:
    """Where an outlet's shingle counts live (its shingle hashes xor a salt) and how many earlier
    articles make a shingle boilerplate; ``source`` is its ``source_key``. Boilerplate is an
    outlet's own template (bylines, footers, newsletter pitches), so it is counted per outlet: a
    wire story reprinted by twenty outlets is seen once by each, and stays text. Without an outlet,
    one shared count and a higher bar."""
    if not source:
        return np.uint32(0), BOILERPLATE_DOCS
    return np.uint32((source * 0x9E3779B1) & 0xFFFFFFFF), BOILERPLATE_DOCS_PER_SOURCE


def tf(counts: np.ndarray) -> np.ndarray:
    """1 + log(count) of weighted term counts (counts below 1 kept as they are)."""
    c = counts.astype(np.float64)
    out: np.ndarray = np.where(c >= 1.0, 1.0 + np.log(np.maximum(c, 1e-12)), c)
    return out


@dataclass(frozen=True)
class SnapshotCrowding:
    """The crowding rows a snapshot holds, by article id (sorted)."""

    ids: np.ndarray
    rows: np.ndarray  # (len(ids), CROWDING_K) float32

    def of(self, article_ids: np.ndarray) -> np.ndarray:
        """Each article's row (zeros for an article the snapshot does not hold)."""
        out = np.zeros((len(article_ids), CROWDING_K), dtype=np.float32)
        if len(self.ids) and len(article_ids):
            pos = np.minimum(np.searchsorted(self.ids, article_ids), len(self.ids) - 1)
            hit = self.ids[pos] == article_ids
            out[hit] = self.rows[pos[hit]]
        return out


class Statistics:
    """Document frequencies, boilerplate counts and the learned time decay."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self.mask = (1 << DF_BITS) - 1
        self.shingle_mask = (1 << SHINGLE_BITS) - 1
        self.df = np.zeros(1 << DF_BITS, dtype=np.float32)  # articles containing a term (by hash), ever
        self.seen_shingles = np.zeros(1 << SHINGLE_BITS, dtype=np.uint8)  # recent articles containing a shingle
        self.n = 0  # articles ever counted in df (copies are not)
        self.gaps = np.zeros(GAP_HOURS, dtype=np.float64)  # see learn_gap
        self.decay_per_day = settings.decay_per_day

    def idf(self, terms: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """idf of term hashes (a fresh array: callers may change it in place); ``extra`` counts a
        not-yet-added article's own terms."""
        n = self.n + (1 if extra is not None else 0)
        df = self.df[terms & self.mask].astype(np.float64)
        if extra is not None:
            np.add(df, extra, out=df)
        # PRIOR_DOCS unseen articles without the term keep a young index from calling every shared word
        # common. Computed in place: decide calls this on ~200 members x 80 terms.
        idf: np.ndarray = df + 1.0
        np.divide(max(n, 1) + 1.0 + PRIOR_DOCS, idf, out=idf)
        np.log(idf, out=idf)
        if n >= MAX_DF_MIN_DOCS:
            idf[df > MAX_DF_RATIO * n] = 0.0
        return idf

    def seen(self, hashes: np.ndarray, salt: np.uint32) -> np.ndarray:
        """How many recent articles (of the outlet ``salt`` names) carried each shingle."""
        seen: np.ndarray = self.seen_shingles[(hashes ^ salt) & self.shingle_mask]
        return seen

    def count_terms(self, terms: np.ndarray) -> None:
        """An article that is not a copy: its terms count in the document frequencies. A slot named
        twice is still counted once: fancy-index writes are not cumulative."""
        self.df[terms & self.mask] += 1.0
        self.n += 1
        if self.n % SHINGLE_HALVING == 0:
            self.seen_shingles >>= 1

    def count_shingles(self, hashes: np.ndarray, source: int) -> None:
        """An article's shingles count towards its outlet's boilerplate (saturating at 255)."""
        slots = (hashes ^ boilerplate_key(source)[0]) & self.shingle_mask
        seen = self.seen_shingles[slots]
        self.seen_shingles[slots] = seen + (seen < 255)

    def learn_gap(self, seconds: float) -> None:
        """Learn how long this stream's stories last, and set the time decay from it.

        Wire-paced news runs for days (basil: 30% of very similar pairs are a day or more apart);
        a stream of one-day stories never joins across days (allsides: 97% the same day). A decay
        fitted to the first keeps the second's near-topic stories of other days as competitors; one
        fitted to the second cuts the first's multi-day stories. The very similar pairs are observed
        whatever the decision (the similarity before any decay), so a strong decay does not feed
        on itself."""
        self.gaps[min(int(seconds // 3600), GAP_HOURS - 1)] += 1.0
        if float(self.gaps.sum()) >= GAP_HALVING:
            self.gaps *= 0.5
        self._set_decay()

    def _set_decay(self) -> None:
        total = float(self.gaps.sum())
        if total < GAP_MIN_PAIRS:
            self.decay_per_day = self.settings.decay_per_day
            return
        hours = int(np.searchsorted(np.cumsum(self.gaps), GAP_QUANTILE * total)) + 1  # the quantile's bucket's upper edge
        self.decay_per_day = self.settings.decay_per_day * min(max(24.0 / hours, 1.0), MAX_DECAY_FACTOR)

    # -- snapshot -------------------------------------------------------------------------

    def snapshot(self, ids: np.ndarray, crowd: np.ndarray) -> bytes:
        """These statistics plus the crowding rows of the indexed articles ``ids``, as bytes."""
        parts = [self.df.tobytes(), self.seen_shingles.tobytes(), ids.astype("<i8").tobytes(), crowd.astype("<f4").tobytes(),
                 self.gaps.astype("<f8").tobytes()]
        header = struct.pack("<HQQQQ", SIGNATURE_VERSION, self.n, len(ids), DF_BITS, SHINGLE_BITS)
        return zlib.compress(header + b"".join(parts), 1)

    def load_snapshot(self, data: bytes) -> SnapshotCrowding:
        """Restore the statistics; returns the crowding rows of the articles indexed at snapshot time."""
        raw = zlib.decompress(data)
        version, n, count, df_bits, shingle_bits = struct.unpack_from("<HQQQQ", raw)
        if (version, df_bits, shingle_bits) != (SIGNATURE_VERSION, DF_BITS, SHINGLE_BITS):
            raise ValueError("snapshot made by another version")
        pos = struct.calcsize("<HQQQQ")
        self.df = np.frombuffer(raw, dtype=np.float32, count=1 << DF_BITS, offset=pos).copy()
        pos += 4 << DF_BITS
        self.seen_shingles = np.frombuffer(raw, dtype=np.uint8, count=1 << SHINGLE_BITS, offset=pos).copy()
        pos += 1 << SHINGLE_BITS
        ids = np.frombuffer(raw, dtype="<i8", count=count, offset=pos)
        pos += 8 * count
        crowd = np.frombuffer(raw, dtype="<f4", count=count * CROWDING_K, offset=pos).reshape(count, CROWDING_K)
        pos += 4 * count * CROWDING_K
        # (snapshots written before the decay was learned end here: it is learned again)
        has_gaps = len(raw) - pos >= 8 * GAP_HOURS
        self.gaps = np.frombuffer(raw, dtype="<f8", count=GAP_HOURS, offset=pos).astype(np.float64) if has_gaps else np.zeros(GAP_HOURS)
        self._set_decay()
        self.n = int(n)
        return SnapshotCrowding(ids.astype(np.int64), crowd.astype(np.float32))
