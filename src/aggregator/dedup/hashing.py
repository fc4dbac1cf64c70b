"""Hashing an article's words: crc32 word shingles (computed in numpy from the words' own crc32s),
MinHash in datasketch's affine32 scheme, and the LSH band keys the copy tier looks candidates up by.
The permutations and the band layout are datasketch's (pinned against it by a test), computed here
so that datasketch and scipy stay off the import path."""

from __future__ import annotations

import functools
import zlib

import numpy as np

from .tokens import TokenCache

# crc32 is affine over GF(2): crc32(a + b) = Z_len(b)(crc32(a)) ^ crc32(b), where Z_n is the linear
# map "feed n zero bytes through the raw CRC register" (zlib's crc32_combine). Tables of Z_n for
# short n, one 256-entry table per input byte, let numpy hash every word shingle from the crc32s of
# its words, without building the shingle strings.
_SHIFT_MAX = 64  # longest ' ' + word (UTF-8 bytes) combined in numpy; longer ones go the slow way


def _crc_shift_tables(max_n: int) -> np.ndarray:
    """T[n * 1024 + 256 * i + b] = Z_n(b << 8i), as int64."""
    basis = np.array(
        [[zlib.crc32(bytes(n), (1 << bit) ^ 0xFFFFFFFF) ^ 0xFFFFFFFF for bit in range(32)] for n in range(max_n + 1)],
        dtype=np.int64,
    )  # Z_n of each single bit
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # (byte value, bit)
    tables = np.zeros((max_n + 1, 4, 256), dtype=np.int64)
    for i in range(4):
        for bit in range(8):
            tables[:, i, :] ^= bits[None, :, bit] * basis[:, 8 * i + bit, None]
    return tables.reshape(-1)


_CRC_SHIFT = _crc_shift_tables(_SHIFT_MAX)


def _crc_shift(crc: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Z_n(crc) elementwise (int64 arrays; every n <= _SHIFT_MAX)."""
    base = n * 1024
    table = _CRC_SHIFT
    out: np.ndarray = table[base + (crc & 0xFF)]
    out ^= table[base + (256 + ((crc >> 8) & 0xFF))]
    out ^= table[base + (512 + ((crc >> 16) & 0xFF))]
    out ^= table[base + (768 + (crc >> 24))]
    return out


# Z_n(crc32(' ')), so that crc32(word) = crc32(' ' + word) ^ _SPACE_SHIFTED[len(word)]
_SPACE_SHIFTED = _crc_shift(np.full(_SHIFT_MAX + 1, zlib.crc32(b" "), dtype=np.int64), np.arange(_SHIFT_MAX + 1))

_FMIX1, _FMIX2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)


def minhash_affine32(values: np.ndarray, permutations: np.ndarray) -> np.ndarray:
    """datasketch's affine32 MinHash of uint32 hash values (identity hashfunc): the MurmurHash3
    finaliser, then min over values of a * h + b (mod 2^32) per permutation."""
    hv = values.astype(np.uint32)
    hv = hv ^ (hv >> np.uint32(16))
    hv *= _FMIX1
    hv ^= hv >> np.uint32(13)
    hv *= _FMIX2
    hv ^= hv >> np.uint32(16)
    a, b = permutations
    phv = hv[:, None] * a
    phv += b
    out: np.ndarray = phv.min(axis=0)
    return out



@functools.lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> np.ndarray:
    """The (a, b) pairs of ``datasketch.MinHash(num_perm, seed, scheme="affine32").permutations``:
    odd 32-bit multipliers and 32-bit offsets from numpy's legacy generator seeded with ``seed``."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    pairs = np.array([a, b])
    pairs.flags.writeable = False  # shared by every Deduplicator of these settings
    return pairs


def _integral(f: np.ndarray, lo: float, hi: float) -> float:
    return float(np.sum(f) * (hi - lo) / 2.0)


@functools.lru_cache(maxsize=8)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) as ``datasketch.MinHashLSH(threshold, num_perm)`` chooses them: the pair that
    minimises the false-positive plus false-negative probability mass (equal weights), each an
    integral over the Jaccard similarity (Gauss-Legendre here, scipy's quad in datasketch)."""
    nodes, weights = np.polynomial.legendre.leggauss(64)
    best, choice = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            lo = threshold / 2.0 * (nodes + 1.0)
            hi = threshold + (1.0 - threshold) / 2.0 * (nodes + 1.0)
            fp = _integral(weights * (1.0 - (1.0 - lo ** float(r)) ** float(b)), 0.0, threshold)
            fn = _integral(weights * (1.0 - (1.0 - (1.0 - hi ** float(r)) ** float(b))), threshold, 1.0)
            error = 0.5 * fp + 0.5 * fn
            if error < best:
                best, choice = error, (b, r)
    return choice


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed



def band_keys(minhash: np.ndarray, bands: tuple[int, int]) -> np.ndarray:
    """One 32-bit key per LSH band (b bands of r values; equal bands give equal keys); for a
    stack of MinHashes, one row of keys each."""
    b, r = bands
    v = minhash[..., : b * r].astype(np.uint64).reshape(*minhash.shape[:-1], b, r)
    key = np.arange(b, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for col in range(r):
        key = _mix64(key ^ v[..., col])
    # 32 bits: two different bands rarely share a key, and when they do the exact MinHash
    # comparison that follows rejects the false candidate.
    folded: np.ndarray = (key >> np.uint64(32)).astype(np.uint32)
    return folded


def shingle_hashes(tokens: list[str], k: int, cache: TokenCache) -> np.ndarray:
    """crc32 of each distinct word k-shingle (a shorter text is one shingle), as uint32, sorted."""
    if len(tokens) < k:
        shingles = {" ".join(tokens)} if tokens else set()
        return np.sort(np.fromiter((zlib.crc32(sh.encode("utf-8")) for sh in shingles), dtype=np.uint32, count=len(shingles)))
    # The crc32 of every shingle from its words' cached crc32(' ' + word), in numpy (see _crc_shift).
    try:
        packed = np.fromiter(map(cache.spaced.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    except KeyError:  # a word not seen by sign's term pass (or the cache was just cleared)
        cache.learn(set(tokens).difference(cache.spaced))
        return _shingle_hashes_slow(tokens, k)
    spaced, length = packed & 0xFFFFFFFF, packed >> 32
    if int(length.max()) > _SHIFT_MAX:
        return _shingle_hashes_slow(tokens, k)
    m = len(tokens) - k + 1
    h = spaced[:m] ^ _SPACE_SHIFTED[length[:m] - 1]  # crc32 of the first word
    for j in range(1, k):
        h = _crc_shift(h, length[j : j + m])
        h ^= spaced[j : j + m]
    order = np.argsort(h)
    out: np.ndarray = h[order].astype(np.uint32)
    same = np.flatnonzero(out[1:] == out[:-1])
    if not len(same):
        return out
    # Equal hashes: a repeated shingle (counted once) or a crc32 collision of two (both kept).
    keep = np.ones(len(out), dtype=bool)
    starts = same[np.r_[True, same[1:] != same[:-1] + 1]]  # first index of each run of equal hashes
    for start in starts.tolist():
        end = start + 1
        while end < len(out) and out[end] == out[start]:
            end += 1
        distinct = {" ".join(tokens[p : p + k]) for p in order[start:end].tolist()}
        keep[start + len(distinct) : end] = False
    kept: np.ndarray = out[keep]
    return kept



def _shingle_hashes_slow(tokens: list[str], k: int) -> np.ndarray:
    shingles = {" ".join(g) for g in zip(*(tokens[i:] for i in range(k)), strict=False)}
    crc32 = zlib.crc32
    return np.sort(np.fromiter((crc32(sh.encode("utf-8")) for sh in shingles), dtype=np.uint32, count=len(shingles)))
