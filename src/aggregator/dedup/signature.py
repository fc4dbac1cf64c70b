"""What the index keeps of one article (``Signature``) and its stored form: the byte layout of the
``signatures`` table (one row each) and the bulk decoder a restart reads a whole window with."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DedupSettings
from .tokens import MAX_TERMS

SIGNATURE_VERSION = 2


def scheme(settings: DedupSettings) -> str:
    """The name stored beside every signature: a database refuses signatures of another scheme."""
    return (
        f"v{SIGNATURE_VERSION}:minhash-affine32-crc32:p{settings.num_perm}:s{settings.seed}:w{settings.shingle_size}"
        f":terms-crc32-{MAX_TERMS}"
    )


@dataclass(frozen=True)
class Signature:
    """What the index keeps of one article; immutable, and stored as bytes (``encode``)."""

    minhash: np.ndarray  # uint32 MinHash values (affine32 scheme), one per permutation
    shingles: int  # distinct (non-boilerplate) shingles hashed into the MinHash
    shingle_hashes: np.ndarray  # uint32 hashes of all body shingles (boilerplate counting)
    terms: np.ndarray  # uint32 term hashes, heaviest first
    counts: np.ndarray  # float32 title/number-weighted counts of those terms
    keys: np.ndarray  # uint32 hashes of the rarest terms when signed: the inverted-index keys



@dataclass(frozen=True)
class Columns:
    """Decoded signatures, one row each (``decode_columns``)."""

    shingles: np.ndarray
    minhash: np.ndarray
    terms: np.ndarray  # (n, MAX_TERMS), 0 in padding
    counts: np.ndarray  # (n, MAX_TERMS), 0 in padding
    keys: np.ndarray  # every row's index keys, concatenated
    key_counts: np.ndarray


def encode(sig: Signature, seed: int) -> bytes:
    # The MinHash part keeps datasketch's LeanMinHash layout (seed, -count, scheme 1 = affine32, values).
    mh = struct.pack("<qiB", seed, -len(sig.minhash), 1) + sig.minhash.astype("<u4").tobytes()
    header = struct.pack("<HIIIII", SIGNATURE_VERSION, len(mh), sig.shingles, len(sig.shingle_hashes), len(sig.terms), len(sig.keys))
    return b"".join(
        (header, mh, sig.shingle_hashes.astype("<u4").tobytes(), sig.terms.astype("<u4").tobytes(),
         sig.counts.astype("<f4").tobytes(), sig.keys.astype("<u4").tobytes())
    )


def decode(data: bytes) -> Signature:
    version, mh_size, shingles, n_hashes, n_terms, n_keys = struct.unpack_from("<HIIIII", data)
    if version != SIGNATURE_VERSION:
        raise ValueError(f"signature format v{version}, expected v{SIGNATURE_VERSION}")
    pos = struct.calcsize("<HIIIII")
    _seed, negated, scheme = struct.unpack_from("<qiB", data, pos)
    if scheme != 1 or mh_size != 13 + 4 * -negated:
        raise ValueError("signature MinHash is not in the affine32 layout")
    # Read-only views into ``data`` (no copies): a signature never changes.
    minhash = np.frombuffer(data, dtype="<u4", count=-negated, offset=pos + 13)
    pos += mh_size
    hashes = np.frombuffer(data, dtype="<u4", count=n_hashes, offset=pos)
    pos += 4 * n_hashes
    terms = np.frombuffer(data, dtype="<u4", count=n_terms, offset=pos)
    pos += 4 * n_terms
    counts = np.frombuffer(data, dtype="<f4", count=n_terms, offset=pos)
    pos += 4 * n_terms
    keys = np.frombuffer(data, dtype="<u4", count=n_keys, offset=pos)
    return Signature(minhash, shingles, hashes, terms, counts, keys)



def decode_columns(blobs: Sequence[bytes], num_perm: int) -> Columns:
    """``decode`` for many signatures at once, into column arrays (what ``restore`` needs: no
    shingle hashes). One pass of byte slicing per signature, then one buffer per column. Raises
    ValueError for a signature of another layout, or a damaged one."""
    n, p, width = len(blobs), num_perm, 4 * MAX_TERMS
    header = struct.Struct("<HIIIII")
    mh_at = header.size + struct.calcsize("<qiB")  # the MinHash values, after datasketch's LeanMinHash prefix
    heads, rows, keys = [], [], []
    for blob in blobs:
        head = header.unpack_from(blob) if len(blob) >= mh_at else (0, 0, 0, 0, 0, 0)
        _version, mh_size, _shingles, n_hashes, n_terms, n_keys = head
        t_at = header.size + mh_size + 4 * n_hashes
        c_at = t_at + 4 * n_terms
        k_at = c_at + 4 * n_terms
        heads.append((*head, blob[mh_at - 1] if len(blob) >= mh_at else 0, len(blob) - (k_at + 4 * n_keys)))
        rows.append(blob[mh_at : mh_at + 4 * p] + blob[t_at:c_at].ljust(width, b"\0") + blob[c_at:k_at].ljust(width, b"\0"))
        keys.append(blob[k_at : k_at + 4 * n_keys])
    h = np.array(heads, dtype=np.int64).reshape(n, 8)
    if n and ((h[:, 0] != SIGNATURE_VERSION).any() or (h[:, 1] != 13 + 4 * p).any() or (h[:, 4] > MAX_TERMS).any()
              or (h[:, 6] != 1).any() or (h[:, 7] != 0).any()):
        raise ValueError(f"a stored signature is not a v{SIGNATURE_VERSION} affine32 signature of {p} permutations")
    table = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(n, 4 * p + 2 * width)
    return Columns(
        shingles=h[:, 2].astype(np.int32),
        minhash=table[:, : 4 * p].copy().view("<u4"),  # one copy each: the column written out of the table
        terms=table[:, 4 * p : 4 * p + width].copy().view("<u4"),
        counts=table[:, 4 * p + width :].copy().view("<f4"),
        keys=np.frombuffer(b"".join(keys), dtype="<u4"),
        key_counts=h[:, 5],
    )
