"""The dedup index's compact multimap against a plain dict-of-lists model, over random operations."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.dedup import postings
from aggregator.dedup.postings import MultiMap


def model_lookup(model: dict[int, list[int]], keys: list[int], cap: int | None) -> list[tuple[int, int]]:
    out = []
    for i, k in enumerate(keys):
        rows = model.get(k, [])
        rows = rows[-cap:] if cap is not None else rows
        out += [(i, r) for r in rows]
    return sorted(out)


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_match_a_dict_of_lists(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postings, "BUFFER", 64)  # many flushes and merges at a small size
    rng = np.random.default_rng(seed)
    mm, model = MultiMap(), {}
    dead: set[int] = set()
    for row in range(3000):
        keys = np.unique(rng.integers(0, 400 if seed % 2 else 2**32, size=int(rng.integers(1, 30)), dtype=np.uint32))
        if row % 3 == 0:
            mm.add_many(keys, np.full(len(keys), row))  # the bulk path (startup) must agree with the one-by-one path
        else:
            mm.add(keys, row)
        for k in keys.tolist():
            model.setdefault(k, []).append(row)
        if row % 500 == 499:  # forget a random fifth of the rows so far
            dead |= set(rng.choice(row + 1, size=(row + 1) // 5, replace=False).tolist())
            gone = np.array(sorted(dead))
            mm.compact(lambda rows, gone=gone: ~np.isin(rows, gone))
            model = {k: [r for r in v if r not in dead] for k, v in model.items()}
        if row % 37 == 0:
            query = list(rng.choice(list(model), size=min(20, len(model)), replace=False))
            query.append(2**32 - 1)  # a key nobody has
            for cap in (None, 1, 7, 50):
                q, r = mm.lookup(np.array(query, dtype=np.uint32), cap)
                assert sorted(zip(q.tolist(), r.tolist(), strict=True)) == model_lookup(model, query, cap)
    assert len(mm) == sum(len(v) for v in model.values())


def test_empty_map_and_empty_query() -> None:
    mm = MultiMap()
    q, r = mm.lookup(np.array([1, 2], dtype=np.uint32), cap=3)
    assert len(q) == len(r) == 0
    mm.add(np.array([5], dtype=np.uint32), 9)
    q, r = mm.lookup(np.zeros(0, dtype=np.uint32))
    assert len(q) == 0
    assert mm.lookup(np.array([5], dtype=np.uint32))[1].tolist() == [9]


@pytest.mark.parametrize("seed", range(3))
def test_keys_sharing_their_low_bits(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The buffer scan matches keys on their low 16 bits first: keys alike there must not mix up."""
    monkeypatch.setattr(postings, "BUFFER", 256)
    rng = np.random.default_rng(seed)
    space = (rng.integers(0, 1 << 16, size=300, dtype=np.uint32) << np.uint32(16)) | rng.integers(0, 4, size=300, dtype=np.uint32)
    mm, model = MultiMap(), {}
    for row in range(1500):
        keys = np.unique(rng.choice(space, size=int(rng.integers(1, 12))))
        mm.add(keys, row)
        for k in keys.tolist():
            model.setdefault(k, []).append(row)
        if row % 29 == 0:
            # a query whose keys differ in their low bits, and one where some share them
            distinct_low = [k for k in dict.fromkeys(space.tolist()) if k & 0xFFFF == 0][:3] + [k for k in space.tolist() if k & 0xFFFF == 1][:1]
            for query in (distinct_low, list(dict.fromkeys(rng.choice(space, size=15).tolist()))):
                for cap in (None, 2, 9):
                    q, r = mm.lookup(np.array(query, dtype=np.uint32), cap)
                    assert sorted(zip(q.tolist(), r.tolist(), strict=True)) == model_lookup(model, query, cap)
