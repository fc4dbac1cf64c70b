"""A compact multimap from 32-bit keys to 32-bit row numbers, for the dedup index.

Python dicts of lists cost a few hundred bytes per key; this costs 8 bytes per
entry. Entries are kept in sorted runs (numpy arrays, sorted by key, stable, so
within one key they stay in the order they were added) plus a small append
buffer; runs of similar size are merged as they accumulate, like a binary
counter, so adding is amortised O(log n) and a lookup is one binary search per
run. Entries are never removed one by one: ``compact`` drops every entry whose
row a predicate rejects, in one pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BUFFER = 4096  # entries appended before they become a sorted run


def low16_table(keys: np.ndarray) -> np.ndarray | None:
    """A 64 Ki table on the low 16 bits of up to 255 uint32 keys: ``table[k & 0xFFFF]`` is 1 + the
    index of the key with those bits (0: none). None when two keys share their low 16 bits (the
    caller then searches). Made fresh per call (cheap), so lookups share no scratch state."""
    n = len(keys)
    if not 0 < n < 256:
        return None
    low = (keys & 0xFFFF).astype(np.intp)
    table = np.zeros(1 << 16, dtype=np.uint8)
    marks = np.arange(1, n + 1, dtype=np.uint8)
    table[low] = marks
    return table if (table[low] == marks).all() else None


class MultiMap:
    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (keys uint32 sorted, rows int32), oldest first
        self._buf_keys = np.zeros(BUFFER, dtype=np.uint32)
        self._buf_rows = np.zeros(BUFFER, dtype=np.int32)
        self._fill = 0

    def __len__(self) -> int:
        return self._fill + sum(len(k) for k, _ in self._runs)

    @property
    def nbytes(self) -> int:
        return self._buf_keys.nbytes + self._buf_rows.nbytes + sum(k.nbytes + r.nbytes for k, r in self._runs)

    def add(self, keys: np.ndarray, row: int) -> None:
        """Map each of ``keys`` to ``row``."""
        keys = np.asarray(keys, dtype=np.uint32)
        start = 0
        while start < len(keys):
            take = min(len(keys) - start, BUFFER - self._fill)
            self._buf_keys[self._fill : self._fill + take] = keys[start : start + take]
            self._buf_rows[self._fill : self._fill + take] = row
            self._fill += take
            start += take
            if self._fill == BUFFER:
                self._flush()

    def add_many(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Map ``keys[i]`` to ``rows[i]`` for every i, in that order (a bulk load: one sorted run)."""
        keys = np.asarray(keys, dtype=np.uint32)
        if not len(keys):
            return
        self._flush()
        # key and input position in one unique 64-bit number: a plain (unstable, faster) sort then
        # keeps each key's entries in input order, as a stable sort of the keys would.
        packed = np.sort((keys.astype(np.uint64) << np.uint64(32)) | np.arange(len(keys), dtype=np.uint64))
        order = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
        self._runs.append(((packed >> np.uint64(32)).astype(np.uint32), np.asarray(rows, dtype=np.int32)[order]))
        self._merge_tail()

    def _flush(self) -> None:
        if not self._fill:
            return
        keys, rows = self._buf_keys[: self._fill], self._buf_rows[: self._fill]
        order = np.argsort(keys, kind="stable")
        self._runs.append((keys[order], rows[order]))
        self._fill = 0
        self._merge_tail()

    def _merge_tail(self) -> None:
        # Merge while the newest run is at least half the size of the one before it.
        while len(self._runs) > 1 and 2 * len(self._runs[-1][0]) >= len(self._runs[-2][0]):
            newer = self._runs.pop()
            older = self._runs.pop()
            self._runs.append(_merge(older, newer))

    def lookup(self, keys: np.ndarray, cap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``keys``, row) for every entry of every key; with ``cap``, only the ``cap``
        most recently added entries of each key. Order: the buffer's entries newest first, then each
        run's (newest run first), by key index and, within a key, oldest first."""
        keys = np.asarray(keys, dtype=np.uint32)
        n = len(keys)
        empty = np.zeros(0, dtype=np.int64)
        if not n:
            return empty, empty.astype(np.int32)
        parts_q: list[np.ndarray] = []
        parts_r: list[np.ndarray] = []
        seen = np.zeros(n, dtype=np.int64)  # entries per key in the newer parts (uncapped)
        if self._fill:
            q, hit = self._scan_buffer(keys)  # newest first
            if len(hit):
                seen = np.bincount(q, minlength=n)
                rows = self._buf_rows[hit]
                if cap is not None:
                    keep = _rank_within(q, n) < cap
                    q, rows = q[keep], rows[keep]
                parts_q.append(q)
                parts_r.append(rows)
        runs = self._runs[::-1]  # newest first
        if runs:
            lo = np.empty((len(runs), n), dtype=np.int64)
            hi = np.empty((len(runs), n), dtype=np.int64)
            for i, (run_keys, _) in enumerate(runs):
                lo[i] = run_keys.searchsorted(keys, side="left")
                hi[i] = run_keys.searchsorted(keys, side="right")
            counts = hi - lo
            if cap is not None:
                # the newest ``cap`` entries per key, counting newer parts first: after run i a key has
                # min(seen + its entries in runs 0..i, cap) (or just ``seen`` if that already exceeds cap)
                taken = np.minimum(np.cumsum(counts, axis=0) + seen, np.maximum(cap, seen))
                counts = np.diff(taken, axis=0, prepend=seen[None, :])
                lo = hi - counts  # the newest entries of a key are at the end of its range
            flat = counts.ravel()
            total = int(flat.sum())
            if total:
                q = np.repeat(np.tile(np.arange(n), len(runs)), flat)
                ends = np.cumsum(flat)
                idx = np.repeat(lo.ravel() - (ends - flat), flat) + np.arange(total)
                bounds = ends[n - 1 :: n].tolist()
                start = 0
                for (_, run_rows), end in zip(runs, bounds, strict=True):
                    if end > start:
                        parts_r.append(run_rows[idx[start:end]])
                    start = end
                parts_q.append(q)
        if not parts_q:
            return empty, empty.astype(np.int32)
        q_all = parts_q[0] if len(parts_q) == 1 else np.concatenate(parts_q)
        r_all = parts_r[0] if len(parts_r) == 1 else np.concatenate(parts_r)
        return q_all, r_all

    def _scan_buffer(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``keys``, buffer position) of the buffer entries with one of ``keys``, newest
        first; a key present twice in ``keys`` matches at its first index."""
        bk = self._buf_keys[: self._fill]
        n = len(keys)
        table = low16_table(keys)  # one gather per buffer entry, no binary search
        if table is not None:
            at = table[bk & 0xFFFF]
            pos = np.flatnonzero(at)
            q = at[pos].astype(np.int64) - 1
            match = keys[q] == bk[pos]
            return q[match][::-1], pos[match][::-1]
        sorter = np.argsort(keys, kind="stable")
        sorted_keys = keys[sorter]
        pos = np.minimum(np.searchsorted(sorted_keys, bk), n - 1)
        hit = np.nonzero(sorted_keys[pos] == bk)[0][::-1]  # newest first
        return sorter[pos[hit]], hit

    def compact(self, keep_row: Callable[[np.ndarray], np.ndarray]) -> None:
        """Drop every entry whose row ``keep_row`` (vectorised: rows -> bool mask) rejects; one run remains."""
        self._flush()
        if not self._runs:
            return
        merged = self._runs[0]
        for run in self._runs[1:]:
            merged = _merge(merged, run)
        keys, rows = merged
        mask = keep_row(rows)
        self._runs = [(keys[mask].copy(), rows[mask].copy())] if mask.any() else []


def _merge(older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted runs in linear passes (no sort); a key's older entries stay before its newer ones."""
    (ok, orow), (nk, nrow) = older, newer
    at_old = np.searchsorted(nk, ok, side="left") + np.arange(len(ok))
    at_new = np.searchsorted(ok, nk, side="right") + np.arange(len(nk))
    keys = np.empty(len(ok) + len(nk), dtype=np.uint32)
    rows = np.empty(len(keys), dtype=np.int32)
    keys[at_old], rows[at_old] = ok, orow
    keys[at_new], rows[at_new] = nk, nrow
    return keys, rows


def _rank_within(q: np.ndarray, n: int) -> np.ndarray:
    """For a sequence of group ids, each element's position within its group (0, 1, 2, ... in order)."""
    order = np.argsort(q, kind="stable")
    sorted_q = q[order]
    starts = np.searchsorted(sorted_q, np.arange(n))
    rank = np.empty(len(q), dtype=np.int64)
    rank[order] = np.arange(len(q)) - starts[sorted_q]
    return rank
