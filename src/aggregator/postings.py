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
        most recently added entries of each key."""
        keys = np.asarray(keys, dtype=np.uint32)
        parts_q: list[np.ndarray] = []
        parts_r: list[np.ndarray] = []
        parts_pos: list[np.ndarray] = []  # how recent: rank counted back from the newest, per key
        # newest first: the buffer (scanned), then runs from newest to oldest
        seen = np.zeros(len(keys), dtype=np.int64)
        if self._fill:
            bk, br = self._buf_keys[: self._fill], self._buf_rows[: self._fill]
            sorter = np.argsort(keys, kind="stable")
            sorted_keys = keys[sorter]
            pos = np.minimum(np.searchsorted(sorted_keys, bk), max(len(keys) - 1, 0))
            hit = np.nonzero(sorted_keys[pos] == bk)[0][::-1] if len(keys) else pos[:0]  # newest first
            if len(hit):
                q = sorter[pos[hit]]
                rank = _rank_within(q, len(keys))
                parts_q.append(q)
                parts_r.append(br[hit])
                parts_pos.append(rank)
                seen += np.bincount(q, minlength=len(keys))
        for run_keys, run_rows in reversed(self._runs):
            lo = np.searchsorted(run_keys, keys, side="left")
            hi = np.searchsorted(run_keys, keys, side="right")
            counts = hi - lo
            if not counts.any():
                continue
            if cap is not None:
                counts = np.clip(np.minimum(counts, cap - seen), 0, None)
                lo = hi - counts  # the newest entries of a key are at the end of its range
            total = int(counts.sum())
            if not total:
                continue
            q = np.repeat(np.arange(len(keys)), counts)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            idx = starts + np.arange(total)
            parts_q.append(q)
            parts_r.append(run_rows[idx])
            # within a run, the last entry of a key is the newest: rank = seen + (hi - 1 - idx)
            parts_pos.append(seen[q] + (np.repeat(hi, counts) - 1 - idx))
            seen += counts
        if not parts_q:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.astype(np.int32)
        q_all, r_all = np.concatenate(parts_q), np.concatenate(parts_r)
        if cap is not None:
            keep = np.concatenate(parts_pos) < cap
            q_all, r_all = q_all[keep], r_all[keep]
        return q_all, r_all

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
