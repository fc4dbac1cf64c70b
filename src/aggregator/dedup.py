"""Which story an article joins, and which variant of a story is canonical. No I/O.

Two tiers of sameness:

* **copy** — the same text republished (wire reprints, syndication, section
  feeds). MinHash over word 3-shingles of the body, minus boilerplate shingles
  (those already seen in several earlier articles: bylines, copyright lines,
  newsletter pitches); MinHash LSH proposes candidates; a copy is an estimated
  Jaccard >= ``copy_jaccard`` or an estimated containment of the smaller text
  >= ``copy_containment`` (a trimmed reprint still counts).
* **report** — an independent write-up of the same event. Term vectors weighted
  (1 + log tf) · idf^0.5 (title words twice, numbers 1.5×, light stemming),
  with document frequencies kept over everything seen so far. Candidates come
  from an inverted index over each article's 25 rarest terms (posting lists
  capped to the most recent 400 articles, 200 best-voted candidates), so the
  work per article does not grow with history. Each candidate *story* is scored
  as a whole: the mean over its members of the similarity, minus a crowding
  correction (half the member's mean of its 5 best similarities, less their time
  decay: articles in crowded near-topic neighbourhoods must match more strongly)
  and a time decay per day apart, learned from how far apart the stream's very
  similar articles are (stories that last hours decay faster than stories that
  run for days). The article joins the best story if
  ``s1 + (s1 - max(s2, 0)) >= report_threshold`` (s2: the runner-up story's
  score), else starts a story. No single weak link can chain two stories.

State that outlives one article (document frequencies, boilerplate shingle
counts and crowding scores, in fixed-size arrays indexed by a 32-bit hash; the
hourly histogram the time decay is learned from) is bounded however long the
daemon runs; ``snapshot``/``load_snapshot`` persist it, and replaying the
articles stored after a snapshot reproduces the index exactly. The index itself covers a sliding window, held in column arrays
(one row per article) and two ``postings.MultiMap`` (LSH band keys, rare-term
keys -> rows); older stories live on in the database only.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import re
import struct
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal, Protocol, TypeVar

import numpy as np
from datasketch import MinHash, MinHashLSH

from .config import DedupSettings
from .models import SignatureChunk
from .postings import MultiMap, low16_table

DecisionKind = Literal["new", "copy", "report"]

# Research-tuned constants (see docs/dedup.md); one configuration for every dataset.
TITLE_WEIGHT = 2.0
NUMBER_WEIGHT = 1.5
IDF_POWER = 0.5
MAX_DF_RATIO = 0.3  # terms in more than this share of articles carry no weight ...
MAX_DF_MIN_DOCS = 200  # ... once this many articles have been seen
MAX_TERMS = 80  # terms kept per article
INDEX_TERMS = 25  # rarest terms posted to / looked up in the inverted index
POSTING_CAP = 400  # most recent articles kept per posting list
MAX_CANDIDATES = 200  # best-voted candidate articles scored exactly
MEMBER_CAP = 16  # members compared per story: the first 4 and the most recent
CROWDING_K = 5  # neighbours in an article's crowding score
CROWDING_WEIGHT = 1.0
# The time decay adapts to the stream (see _learn_gap): how far apart in time an article and its
# most similar earlier article are, when they are very similar (cosine >= CONFIDENT_SIM), tells
# how long this stream's stories last. When 90% of such pairs are less than H hours apart, the
# decay per day is decay_per_day * 24 / H, between 1x and MAX_DECAY_FACTOR x.
CONFIDENT_SIM = 0.4
GAP_QUANTILE = 0.9
GAP_HOURS = 73  # histogram of those gaps, one bucket per hour (the last: 72 h and more)
GAP_MIN_PAIRS = 20.0  # fewer observed pairs: the configured decay
GAP_HALVING = 2000.0  # the histogram is halved at this total, so it follows the recent stream
MAX_DECAY_FACTOR = 6.0
MARGIN_WEIGHT = 1.0
RUNNER_FLOOR = 0.0  # the runner-up score assumed when only one story is a candidate
BATCH_PASSES = 3  # refine_batch: re-decisions of an undated batch (the second rarely moves anything)
PRIOR_DOCS = 20.0  # see _idf
MIN_SHARED_TERMS = 2  # one shared word is not a story: a text-less item titled "Elwyn" joined a storm in Port Elwyn
SAME_SOURCE_PENALTY = 0.1  # subtracted from the score of a story that has a member by the same outlet
BOILERPLATE_DOCS = 16  # a shingle seen in this many earlier articles is boilerplate (outlet unknown) ...
BOILERPLATE_DOCS_PER_SOURCE = 4  # ... or in this many of the same outlet's
COPY_MIN_SHINGLES = 6  # fewer distinctive body shingles: use title + body
COPY_LSH_THRESHOLD = 0.3
COPY_MIN_JACCARD = 0.3  # floor for the containment rule
DF_BITS = 22  # hashed document-frequency table: 4 Mi float32 slots
SHINGLE_BITS = 24  # hashed boilerplate-shingle counts: 16 Mi saturating bytes ...
SHINGLE_HALVING = 1 << 15  # ... halved every this many articles, so "boilerplate" means "recently common"
SIGNATURE_VERSION = 2
RESTORE_BATCH = 8192  # stored signatures decoded and indexed together at startup

_STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its
    this that these those he she they we you i his her their our your my me him them us not no so than
    then there here what which who whom whose when where why how all any some more most other such only
    own same too very can will just should would could may might must do does did done has have had
    having also about into over after before under again further once said says say one out up down
    off mr ms mrs get got told tells according while during since because though although against
    between through per via new year years week day days time monday tuesday wednesday thursday friday
    saturday sunday s t d ll re ve m
    le la les un une des du de et ou en dans sur pour par avec est sont au aux ce cette ces qui que
    quoi dont il elle ils elles nous vous je se sa son ses leur leurs pas plus ne l d qu n y
    el los las unos unas del y o en con por para es son al lo su sus que se no
    der die das ein eine und oder mit von zu im ist sind den dem des auf fur nicht sich
    """.split()
)
_APOSTROPHES = re.compile(r"['’`´]")
_DIGIT_GROUPS = re.compile(r"(?<=\d)[,.](?=\d)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# scripts written without spaces: index character bigrams
_NO_SPACES = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f]")
_ARABIC_FORMS = {0x0640: None, 0x0629: "\u0647", 0x0649: "\u064a"}  # tatweel, teh marbuta, alef maksura
# a digit group split by a no-break or thin space (French and SI typography: "1 400"), before NFKC
# turns those into plain spaces, where a split cannot be told from two numbers
_SPACED_DIGIT_GROUPS = re.compile(r"(?<=\d)[\u00a0\u2009\u202f](?=\d{3}(?!\d))")
_SUFFIXES = ("ings", "ing", "edly", "ed", "es", "s", "ly")


def _combining_marks() -> dict[int, None]:
    """A str.translate table deleting every combining mark (what NFKD splits off accented letters)."""
    ranges = (range(0x300, 0x20000), range(0xE0000, 0xE1000))
    return {c: None for r in ranges for c in r if unicodedata.combining(chr(c))}


def _decimal_digits() -> dict[int, str]:
    """A str.translate table writing every non-ASCII decimal digit (Arabic-Indic, Persian,
    Devanagari, fullwidth, ...) as its ASCII digit, so "١٢" and "12" are one term."""
    return {c: str(unicodedata.decimal(chr(c))) for c in range(0x80, 0x20000) if unicodedata.category(chr(c)) == "Nd"}


_COMBINING = _combining_marks()
_FOLD_FORMS = str.maketrans({**_ARABIC_FORMS, **_decimal_digits()})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _fold_run(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKD", match.group()).translate(_COMBINING)


def normalize(text: str) -> str:
    """NFKC, case-folded, accents and Arabic vowel marks stripped, digits in ASCII, digit groups
    joined (1,400 and 1 400 -> 1400)."""
    if not text.isascii():
        text = _SPACED_DIGIT_GROUPS.sub("", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFC", _NON_ASCII.sub(_fold_run, text)).translate(_FOLD_FORMS)
    text = _DIGIT_GROUPS.sub("", text)
    return _APOSTROPHES.sub(" ", text)


# ASCII text (the common case) takes a shortcut with the same tokens: after casefolding, a word is
# a run of [a-z0-9], and apostrophes only ever separate words anyway.
_ASCII_DIGIT_GROUP = re.compile(r"[0-9][,.][0-9]")
_ASCII_SEPARATORS = "".join(c if c.isascii() and c.isalnum() and not c.isupper() else " " for c in map(chr, range(128)))


def words(text: str) -> list[str]:
    """Unicode word tokens of ``normalize(text)``; runs of CJK/Thai script become character bigrams."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded.isascii():
        if _ASCII_DIGIT_GROUP.search(folded):
            folded = _DIGIT_GROUPS.sub("", folded)
        return folded.translate(_ASCII_SEPARATORS).split()
    text = normalize(text)
    if text.isascii() or not _NO_SPACES.search(text):
        return _WORD.findall(text)
    out: list[str] = []
    for word in _WORD.findall(text):
        if _NO_SPACES.search(word) and len(word) > 1:
            out.extend(word[i : i + 2] for i in range(len(word) - 1))
        else:
            out.append(word)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if not word.isascii() or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _hash32(data: bytes) -> int:
    return zlib.crc32(data)


# -- fast signing helpers (results identical to the plain definitions above) ----------------

def _term_of(token: str) -> str | None:
    """The term a token counts as (stemmed), or None when it carries no weight."""
    if token in _STOPWORDS or (len(token) < 2 and not _NO_SPACES.match(token)):
        return None
    return token if token.isdigit() else _stem(token)


def _weigh_plain(title_tokens: list[str], text_tokens: list[str]) -> dict[str, float]:
    """Weighted term counts: title words twice, numbers 1.5x (the reference definition)."""
    counts: dict[str, float] = {}
    for tokens, weight in ((title_tokens, TITLE_WEIGHT), (text_tokens, 1.0)):
        for token, n in Counter(tokens).items():  # weigh and stem each distinct token once
            term = _term_of(token)
            if term is not None:
                w = weight * NUMBER_WEIGHT if token.isdigit() else weight
                counts[term] = counts.get(term, 0.0) + w * n
    return counts


# The weights are multiples of 1/4, so weighted counts are exact in any summation order.
_EXACT_WEIGHTS = all(float(w * 4).is_integer() for w in (TITLE_WEIGHT, NUMBER_WEIGHT))
TOKEN_CACHE_SIZE = 1 << 17  # distinct tokens remembered by a Deduplicator's _TokenCache


class _TokenCache:
    """What ``sign`` needs of each token, remembered so that the per-token work runs in C (``map``
    over dict lookups, ``Counter``). Bounded: emptied when full. Every value is computed from its
    key alone, so a lookup that misses (a token not learned yet) is answered by the plain path."""

    def __init__(self, size: int = TOKEN_CACHE_SIZE) -> None:
        self.size = size
        self.term: dict[str, str | None] = {}  # token -> _term_of(token)
        self.term_hash: dict[str, int] = {}  # term -> crc32(term)
        self.spaced: dict[str, int] = {}  # token -> crc32(' ' + token) | len(' ' + token, UTF-8 bytes) << 32

    def learn(self, tokens: Iterable[str]) -> None:
        if len(self.term) >= self.size:
            self.term.clear()
            self.term_hash.clear()
            self.spaced.clear()
        for token in tokens:
            term = _term_of(token)
            if term is not None:
                self.term_hash[term] = zlib.crc32(term.encode("utf-8"))
            data = b" " + token.encode("utf-8")
            self.spaced[token] = zlib.crc32(data) | len(data) << 32
            self.term[token] = term

    def weigh(self, title_tokens: list[str], text_tokens: list[str]) -> dict[str, float]:
        """``_weigh_plain``, faster (raises KeyError if the cache was emptied meanwhile)."""
        for tokens in (title_tokens, text_tokens):
            missing = set(tokens).difference(self.term)
            if missing:
                self.learn(missing)
        term_of = self.term.__getitem__
        counts: dict[str | None, float] = Counter(map(term_of, text_tokens))  # type: ignore[assignment]
        if title_tokens:
            for term, n in Counter(map(term_of, title_tokens)).items():
                counts[term] = counts.get(term, 0) + TITLE_WEIGHT * n
        counts.pop(None, None)
        weighted: dict[str, float] = counts  # type: ignore[assignment]
        for term in [t for t in filter(str.isdigit, weighted)]:  # numbers (their term is the token itself)
            weighted[term] *= NUMBER_WEIGHT
        return weighted


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


def _minhash_affine32(values: np.ndarray, permutations: np.ndarray) -> np.ndarray:
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
class Decision:
    """Where an article goes: a new story, or an existing one as a copy or a report."""

    story_id: int | None
    kind: DecisionKind
    similarity: float
    matched_article_id: int | None = None


class CanonicalCandidate(Protocol):
    @property
    def article_id(self) -> int: ...
    @property
    def published_at(self) -> datetime: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def text_length(self) -> int: ...


C = TypeVar("C", bound=CanonicalCandidate)
FULL_REPORT_FRACTION = 0.5


def choose_canonical(members: Sequence[C]) -> C:
    """The earliest *full* report: first published among members whose text is at least half
    as long as the story's longest (a teaser or stub never leads, however early).
    Ties go to the first seen, then to the lowest article id, so the choice is stable."""
    longest = max(m.text_length for m in members)
    full = [m for m in members if m.text_length >= FULL_REPORT_FRACTION * longest]
    return min(full, key=lambda m: (m.published_at, m.first_seen_at, m.article_id))


class _Rows:
    """Column arrays with one row per indexed article (grown by doubling; untouched capacity costs
    no resident memory)."""

    def __init__(self, num_perm: int, capacity: int = 1024) -> None:
        self.capacity = 0
        self.high = 0  # rows ever handed out
        self.free: list[int] = []
        self.article = np.zeros(0, dtype=np.int64)
        self.story = np.zeros(0, dtype=np.int64)
        self.t = np.zeros(0, dtype=np.float64)  # published, seconds since the epoch
        self.source = np.zeros(0, dtype=np.uint32)  # hash of the outlet's name (0: unknown)
        self.shingles = np.zeros(0, dtype=np.int32)
        self.alive = np.zeros(0, dtype=bool)
        self.minhash = np.zeros((0, num_perm), dtype=np.uint32)
        self.terms = np.zeros((0, MAX_TERMS), dtype=np.uint32)  # padded with 0 (weight 0)
        self.tf = np.zeros((0, MAX_TERMS), dtype=np.float16)  # 1 + log(count), 0 in padding (3 significant digits suffice)
        self.crowd = np.zeros((0, CROWDING_K), dtype=np.float32)  # each article's best similarities so far
        self._grow(capacity)

    _COLUMNS = ("article", "story", "t", "source", "shingles", "alive", "minhash", "terms", "tf", "crowd")

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


@dataclass(frozen=True)
class _Columns:
    """Decoded signatures, one row each (``Deduplicator._decode_columns``)."""

    shingles: np.ndarray
    minhash: np.ndarray
    terms: np.ndarray  # (n, MAX_TERMS), 0 in padding
    counts: np.ndarray  # (n, MAX_TERMS), 0 in padding
    keys: np.ndarray  # every row's index keys, concatenated
    key_counts: np.ndarray


@dataclass(frozen=True)
class _Scored:
    """A decision plus the crowding updates it implies (applied only when the article is added)."""

    decision: Decision
    query_row: np.ndarray
    member_rows: np.ndarray  # rows of the members scored
    member_crowd: np.ndarray | None  # their crowding scores with this article counted
    band_keys: np.ndarray  # the article's LSH band keys (posted on add)
    confident_gap: float | None  # seconds to its most similar member, if that one is very similar


def _source_key(source: str | None) -> int:
    return zlib.crc32(source.encode("utf-8")) | 1 if source else 0


def _boilerplate_key(source: int) -> tuple[np.uint32, int]:
    """Where an outlet's shingle counts live (its shingle hashes xor a salt) and how many earlier
    articles make a shingle boilerplate; ``source`` is its ``_source_key``. Boilerplate is an
    outlet's own template (bylines, footers, newsletter pitches), so it is counted per outlet: a
    wire story reprinted by twenty outlets is seen once by each, and stays text. Without an outlet,
    one shared count and a higher bar."""
    if not source:
        return np.uint32(0), BOILERPLATE_DOCS
    return np.uint32((source * 0x9E3779B1) & 0xFFFFFFFF), BOILERPLATE_DOCS_PER_SOURCE


def _containment(
    minhash: np.ndarray, shingles: int, others: np.ndarray, other_shingles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Estimated Jaccard with each row of ``others``, and the estimated share of the smaller shingle set in the other."""
    j = (others == minhash).mean(axis=1)
    inter = j * (shingles + other_shingles) / (1.0 + j)
    contained = np.minimum(1.0, inter / np.maximum(1, np.minimum(shingles, other_shingles)))
    return j, contained


def _member_of(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values in sorted_set, elementwise (np.isin by binary search: no sort of ``values``)."""
    if not len(sorted_set):
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    found: np.ndarray = sorted_set[pos] == values
    return found


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _release_freed_memory() -> None:
    """Hand freed heap pages back to the OS. glibc keeps the pages of the index's large numpy
    temporaries (multimap merges) otherwise, and a long-running daemon's resident size creeps up."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _ts(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


class Deduplicator:
    """The in-memory candidate index over the sliding window, and the assignment rule."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self.scheme = (
            f"v{SIGNATURE_VERSION}:minhash-affine32-crc32:p{settings.num_perm}:s{settings.seed}:w{settings.shingle_size}"
            f":terms-crc32-{MAX_TERMS}"
        )
        self._mask = (1 << DF_BITS) - 1
        self._shingle_mask = (1 << SHINGLE_BITS) - 1
        self._df = np.zeros(1 << DF_BITS, dtype=np.float32)  # articles containing a term (by hash), ever
        self._seen_shingles = np.zeros(1 << SHINGLE_BITS, dtype=np.uint8)  # recent articles containing a shingle
        self._n = 0  # articles ever counted in _df (copies are not)
        self._permutations = MinHash(num_perm=settings.num_perm, seed=settings.seed, hashfunc=_hash32, scheme="affine32").permutations
        lsh = MinHashLSH(threshold=COPY_LSH_THRESHOLD, num_perm=settings.num_perm)  # only to choose bands as datasketch would
        self._bands_shape = (lsh.b, lsh.r)
        self._window_s = settings.window_hours * 3600.0
        self._pending: tuple[Signature, datetime, _Scored] | None = None
        self.last_article_id = 0  # every article up to this id has been learned from
        # The window's articles, one row each in column arrays (rows of evicted articles are reused
        # once the multimaps have dropped their entries), plus two multimaps onto rows.
        self._rows = _Rows(settings.num_perm)
        self._tokens = _TokenCache()
        self._row_of: dict[int, int] = {}  # article id -> row
        self._stories: dict[int, list[int]] = {}  # story id -> member rows, in the order they joined
        self._postings = MultiMap()  # rare-term hash -> rows (the report tier's candidates)
        self._bands = MultiMap()  # MinHash band hash -> rows (the copy tier's candidates)
        self._quarantine: list[int] = []  # rows evicted but still named in the multimaps
        self._oldest = float("inf")  # earliest publication time in the window
        self._gaps = np.zeros(GAP_HOURS, dtype=np.float64)  # see _learn_gap
        self._decay_per_day = settings.decay_per_day

    # -- signatures --------------------------------------------------------------

    def sign(self, title: str, text: str, source: str | None = None) -> Signature:
        """The article's signature, given what the index has seen so far (it filters the boilerplate
        of its outlet, ``source``: pass the same one to ``add``)."""
        title_tokens, text_tokens = words(title), words(text)  # tokenised once, used for terms and shingles
        try:
            if not _EXACT_WEIGHTS:
                raise KeyError
            counts = self._tokens.weigh(title_tokens, text_tokens)
            top = sorted(counts)  # heaviest first, ties by term: two stable sorts, no key tuples
            top.sort(key=counts.__getitem__, reverse=True)
            del top[MAX_TERMS:]
            terms = np.fromiter(map(self._tokens.term_hash.__getitem__, top), dtype=np.uint32, count=len(top))
        except KeyError:
            counts = _weigh_plain(title_tokens, text_tokens)
            top = sorted(counts, key=lambda t: (-counts[t], t))[:MAX_TERMS]
            terms = np.fromiter([zlib.crc32(t.encode("utf-8")) for t in top], dtype=np.uint32, count=len(top))
        tf_counts = np.fromiter(map(counts.__getitem__, top), dtype=np.float32, count=len(top))
        body_hashes = self._shingle_hashes(text_tokens)
        salt, limit = _boilerplate_key(_source_key(source))
        seen = self._seen_shingles[(body_hashes ^ salt) & self._shingle_mask]
        # Counting this article itself, a shingle is boilerplate once more than ``limit`` carry it.
        keep = body_hashes[seen < limit]
        if len(keep) < COPY_MIN_SHINGLES:
            both = self._shingle_hashes(title_tokens + text_tokens)
            keep = both[self._seen_shingles[(both ^ salt) & self._shingle_mask] <= limit]
            keep = keep if len(keep) else both
        if not len(keep):
            keep = np.zeros(1, dtype=np.uint32)  # crc32 of the empty shingle
        values = _minhash_affine32(keep, self._permutations)
        keys = self._top(terms, self._tf(tf_counts), self._idf(terms, np.ones(len(terms))))
        return Signature(values, len(keep), body_hashes, terms, tf_counts, keys.astype(np.uint32))

    def _shingle_hashes(self, tokens: list[str]) -> np.ndarray:
        """crc32 of each distinct word k-shingle (a shorter text is one shingle), as uint32, sorted."""
        k = self.settings.shingle_size
        if len(tokens) < k:
            shingles = {" ".join(tokens)} if tokens else set()
            return np.sort(np.fromiter((zlib.crc32(sh.encode("utf-8")) for sh in shingles), dtype=np.uint32, count=len(shingles)))
        # The crc32 of every shingle from its words' cached crc32(' ' + word), in numpy (see _crc_shift).
        try:
            packed = np.fromiter(map(self._tokens.spaced.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        except KeyError:  # a word not seen by sign's term pass (or the cache was just cleared)
            self._tokens.learn(set(tokens).difference(self._tokens.spaced))
            return self._shingle_hashes_slow(tokens)
        spaced, length = packed & 0xFFFFFFFF, packed >> 32
        if int(length.max()) > _SHIFT_MAX:
            return self._shingle_hashes_slow(tokens)
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

    def _shingle_hashes_slow(self, tokens: list[str]) -> np.ndarray:
        k = self.settings.shingle_size
        shingles = {" ".join(g) for g in zip(*(tokens[i:] for i in range(k)), strict=False)}
        crc32 = zlib.crc32
        return np.sort(np.fromiter((crc32(sh.encode("utf-8")) for sh in shingles), dtype=np.uint32, count=len(shingles)))

    def encode(self, sig: Signature) -> bytes:
        # The MinHash part keeps datasketch's LeanMinHash layout (seed, -count, scheme 1 = affine32, values).
        mh = struct.pack("<qiB", self.settings.seed, -len(sig.minhash), 1) + sig.minhash.astype("<u4").tobytes()
        header = struct.pack("<HIIIII", SIGNATURE_VERSION, len(mh), sig.shingles, len(sig.shingle_hashes), len(sig.terms), len(sig.keys))
        return b"".join(
            (header, mh, sig.shingle_hashes.astype("<u4").tobytes(), sig.terms.astype("<u4").tobytes(),
             sig.counts.astype("<f4").tobytes(), sig.keys.astype("<u4").tobytes())
        )

    def decode(self, data: bytes) -> Signature:
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

    # -- similarity ---------------------------------------------------------------

    @staticmethod
    def _tf(counts: np.ndarray) -> np.ndarray:
        c = counts.astype(np.float64)
        tf: np.ndarray = np.where(c >= 1.0, 1.0 + np.log(np.maximum(c, 1e-12)), c)
        return tf

    def _idf(self, terms: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """idf of term hashes (a fresh array: callers may change it in place); ``extra`` counts a
        not-yet-added article's own terms."""
        n = self._n + (1 if extra is not None else 0)
        df = self._df[terms & self._mask].astype(np.float64)
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

    def containment(self, a: Signature, b: Signature) -> tuple[float, float]:
        """(estimated Jaccard, estimated share of the smaller shingle set found in the other)."""
        j, contained = _containment(a.minhash, a.shingles, b.minhash[None, :], np.array([b.shingles]))
        return float(j[0]), float(contained[0])

    def _is_copy(self, j: np.ndarray, contained: np.ndarray) -> np.ndarray:
        s = self.settings
        is_copy: np.ndarray = (j >= s.copy_jaccard) | ((contained >= s.copy_containment) & (j >= COPY_MIN_JACCARD))
        return is_copy

    def cosine(self, a: Signature, b: Signature) -> float:
        """TF-IDF cosine of two articles under the current document frequencies."""
        wa = self._tf(a.counts) * self._idf(a.terms) ** IDF_POWER
        wb = self._tf(b.counts) * self._idf(b.terms) ** IDF_POWER
        common, ia, ib = np.intersect1d(a.terms, b.terms, assume_unique=True, return_indices=True)
        if not len(common):
            return 0.0
        norm = float(np.sqrt(wa @ wa) * np.sqrt(wb @ wb)) or 1.0
        return float(wa[ia] @ wb[ib]) / norm

    def relation(self, a: Signature, b: Signature) -> tuple[Literal["copy", "report"], float]:
        """How two articles relate: ('copy', estimated Jaccard) or ('report', cosine)."""
        j, contained = self.containment(a, b)
        if self._is_copy(np.array(j), np.array(contained)):
            return "copy", j
        return "report", max(self.cosine(a, b), 0.0)

    # -- assignment ------------------------------------------------------------------

    def _in_window(self, t: float, other: np.ndarray) -> np.ndarray:
        inside: np.ndarray = np.abs(t - other) <= self._window_s
        return inside

    def decide(self, sig: Signature, published: datetime, source: str | None = None) -> Decision:
        """The story this article should join, or a new one. Does not change the index."""
        scored = self._score(sig, published, _source_key(source))
        self._pending = (sig, published, scored)
        return scored.decision

    def _band_keys(self, minhash: np.ndarray) -> np.ndarray:
        """One 32-bit key per LSH band (b bands of r values; equal bands give equal keys); for a
        stack of MinHashes, one row of keys each."""
        b, r = self._bands_shape
        v = minhash[..., : b * r].astype(np.uint64).reshape(*minhash.shape[:-1], b, r)
        key = np.arange(b, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        for col in range(r):
            key = _mix64(key ^ v[..., col])
        # 32 bits: two different bands rarely share a key, and when they do the exact MinHash
        # comparison that follows rejects the false candidate.
        folded: np.ndarray = (key >> np.uint64(32)).astype(np.uint32)
        return folded

    def _score(self, sig: Signature, published: datetime, source: int) -> _Scored:
        t = _ts(published)
        own = np.ones(len(sig.terms))  # this article counts in its own document frequencies
        rows = self._rows
        # Tier 1: copies, among the articles sharing a MinHash band.
        band_keys = self._band_keys(sig.minhash)
        best_copy, best_j = self._best_copy(sig, t, band_keys)
        # Tier 2: reports (always scored: the crowding statistics learn from every article).
        idf = self._idf(sig.terms, own)
        tf = self._tf(sig.counts)
        query_w = tf * idf**IDF_POWER
        query_w = query_w / (float(np.sqrt(query_w @ query_w)) or 1.0)
        candidates = self._candidates(sig.keys, t, own_terms=sig.terms)
        report, query_row, member_rows, member_crowd, gap = self._score_stories(sig, query_w, candidates, t, source)
        if best_copy is not None:
            decision = Decision(int(rows.story[best_copy]), "copy", round(best_j, 6), int(rows.article[best_copy]))
        elif report is not None:
            decision = report
        else:
            decision = Decision(None, "new", 1.0)
        return _Scored(decision, query_row, member_rows, member_crowd, band_keys, gap)

    def _best_copy(self, sig: Signature, t: float, band_keys: np.ndarray, exclude: int = -1) -> tuple[int | None, float]:
        """The row this article copies (the most similar; ties go to the earliest article) and the
        estimated Jaccard, among the articles sharing a MinHash band; (None, 0.0) if none."""
        rows = self._rows
        _, hits = self._bands.lookup(band_keys)
        hits = np.unique(hits)
        hits = hits[rows.alive[hits] & self._in_window(t, rows.t[hits]) & (hits != exclude)]
        if not len(hits):
            return None, 0.0
        j, contained = _containment(sig.minhash, sig.shingles, rows.minhash[hits], rows.shingles[hits])
        copies = np.nonzero(self._is_copy(j, contained))[0]
        if not len(copies):
            return None, 0.0
        pick = copies[np.lexsort((rows.article[hits[copies]], -j[copies]))[0]]
        return int(hits[pick]), float(j[pick])

    @staticmethod
    def _top(terms: np.ndarray, tf: np.ndarray, idf: np.ndarray) -> np.ndarray:
        if not len(terms):
            return terms
        score = tf * idf
        if not (score > 0).any():  # a fresh index (every term in every article so far): rank by frequency alone
            score = tf * 1e-6
        order = np.lexsort((terms, -score))[:INDEX_TERMS]  # ties broken on the term hash: deterministic
        top: np.ndarray = terms[order[score[order] > 0]]
        return top

    def _candidates(self, keys: np.ndarray, t: float, own_terms: np.ndarray | None) -> np.ndarray:
        """Rows of articles sharing rare terms with the query, best idf-weighted votes first.
        ``own_terms``: the query's terms, counted in the df as it is not indexed yet (None: it is)."""
        if not len(keys):
            return np.zeros(0, dtype=np.int64)
        rows = self._rows
        extra = None if own_terms is None else (keys[:, None] == own_terms[None, :]).any(axis=1).astype(np.float64)  # np.isin, without its overhead
        which, hits = self._postings.lookup(keys, cap=POSTING_CAP)
        live = rows.alive[hits]
        which, hits = which[live], hits[live]
        if not len(hits):
            return np.zeros(0, dtype=np.int64)
        weights = self._idf(keys, extra)[which]
        found, inverse = np.unique(hits, return_inverse=True)
        votes = np.bincount(inverse, weights=weights)
        order = np.lexsort((rows.article[found], -votes))[:MAX_CANDIDATES]
        best = found[order]
        inside: np.ndarray = best[self._in_window(t, rows.t[best])]
        return inside

    def _query_lookup(self, query_terms: np.ndarray, query_w: np.ndarray, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``terms``: the weight of the equal query term (0.0 if none), and whether a
        query term shares its df slot (bool or 0/1)."""
        # One gather in a table on the low 16 bits, no binary search. Equal terms and equal df slots
        # share those bits, so one query term per entry suffices (when two query terms share them,
        # the binary search below answers).
        table = low16_table(query_terms)
        if table is not None:
            at = table[terms & 0xFFFF]
            # entry 0 (no query term there) stands for the first query term, whose low bits differ
            candidate = np.concatenate((query_terms[:1], query_terms))[at]
            qvals: np.ndarray = np.where(candidate == terms, np.concatenate(((0.0,), query_w))[at], 0.0)
            extra: np.ndarray = ((candidate ^ terms) & self._mask) == 0
            return qvals, extra
        extra = _member_of(terms & self._mask, np.sort(query_terms & self._mask)).astype(np.float64)
        order = np.argsort(query_terms, kind="stable")
        sorted_terms, sorted_w = query_terms[order], query_w[order]
        if len(sorted_terms):
            pos = np.minimum(np.searchsorted(sorted_terms, terms), len(sorted_terms) - 1)
            qvals = np.where(sorted_terms[pos] == terms, sorted_w[pos], 0.0)
        else:
            qvals = np.zeros(terms.shape)
        return qvals, extra

    def _score_stories(
        self, sig: Signature, query_w: np.ndarray, candidates: np.ndarray, t: float, source: int, threshold: float | None = None,
        counted: bool = False,
    ) -> tuple[Decision | None, np.ndarray, np.ndarray, np.ndarray | None, float | None]:
        rows = self._rows
        empty = np.zeros(CROWDING_K, dtype=np.float32)
        names = list(dict.fromkeys(rows.story[candidates].tolist()))
        groups = list(map(self._stories.__getitem__, names))
        sizes = list(map(len, groups))
        if sizes and max(sizes) > MEMBER_CAP:
            groups = [m if len(m) <= MEMBER_CAP else m[:4] + m[-(MEMBER_CAP - 4) :] for m in groups]
            sizes = list(map(len, groups))
        member_rows = np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64, count=sum(sizes))
        inside = self._in_window(t, rows.t[member_rows])
        member_rows, own_idx = member_rows[inside], np.repeat(np.arange(len(names)), sizes)[inside]
        if not len(member_rows):
            return None, empty, member_rows, None, None
        terms, tf = rows.terms[member_rows], rows.tf[member_rows]
        # For each member term: the query's weight for it (0 when the query lacks it), and whether
        # the query has a term in the same df slot (it counts in the df then).
        qvals, extra = self._query_lookup(sig.terms, query_w, terms)
        # member weights under the current df, counting the query's own terms (by df slot) too
        # (``counted``: the query is indexed already, as in a batch's refinement: it is in the df once)
        w = self._idf(terms, None if counted else extra)
        if IDF_POWER == 0.5:  # what ``w ** 0.5`` computes
            np.sqrt(w, out=w)
        else:
            w **= IDF_POWER
        np.multiply(tf, w, out=w)
        sims = (w * qvals).sum(axis=1) / np.maximum(np.sqrt((w * w).sum(axis=1)), 1e-12)
        apart = np.abs(t - rows.t[member_rows])
        decay = self._decay_per_day * apart / 86400.0
        top = int(np.argmax(sims))
        gap = float(apart[top]) if sims[top] >= CONFIDENT_SIM else None
        # Crowding counts neighbours near in time: similarities less the time decay (at least 0).
        # A near-topic article from three days ago is no competitor in a stream of one-day stories.
        near = np.maximum(sims - decay, 0.0)
        # crowding: the query's own k best similarities, and the members' (updated on add)
        best = np.sort(near)[::-1][:CROWDING_K]
        query_row = np.zeros(CROWDING_K, dtype=np.float32)
        query_row[: len(best)] = best
        crowd = rows.crowd[member_rows]
        adjusted = sims - CROWDING_WEIGHT * 0.5 * crowd.mean(axis=1)
        worst = crowd.argmin(axis=1)
        r = np.arange(len(member_rows))
        improve = near > crowd[r, worst]
        new_crowd = crowd.copy()
        new_crowd[r[improve], worst[improve]] = near[improve]
        # time decay
        adjusted = adjusted - decay
        count = np.bincount(own_idx, minlength=len(names))
        # The story's score: its members' mean, each weighted by how much text it has (its share of
        # a full term vector): a title-only entry or a one-line teaser says little about what
        # belongs to a story, and two of them pushed an independent rewrite out of its story.
        evidence = np.count_nonzero(tf, axis=1) / MAX_TERMS
        score = np.bincount(own_idx, weights=adjusted * evidence, minlength=len(names)) / np.maximum(
            np.bincount(own_idx, weights=evidence, minlength=len(names)), 1e-9
        )
        if source:
            # An outlet rarely writes a second independent report of one event: a story it is in
            # already (by a report or a copy) must match more strongly. Per story, not averaged
            # over members, so a story's reprints do not dilute it.
            same = np.bincount(own_idx, weights=rows.source[member_rows] == source, minlength=len(names)) > 0
            score -= SAME_SOURCE_PENALTY * same
        score[count == 0] = -np.inf
        ranked = np.lexsort((np.arange(len(names)), -score))
        b = int(ranked[0])
        s1 = float(score[b])
        s2 = float(score[ranked[1]]) if len(ranked) > 1 else -np.inf
        if s1 + MARGIN_WEIGHT * (s1 - max(s2, RUNNER_FLOOR)) < (self.settings.report_threshold if threshold is None else threshold):
            return None, query_row, member_rows, new_crowd, gap
        mine = np.nonzero(own_idx == b)[0]
        if int(np.count_nonzero(qvals[mine] > 0, axis=1).max()) < MIN_SHARED_TERMS:  # no member shares enough terms with it
            return None, query_row, member_rows, new_crowd, gap
        matched = int(rows.article[member_rows[mine[np.argmax(sims[mine])]]])
        raw = float(sims[mine].mean())
        return Decision(names[b], "report", round(min(max(raw, 0.0), 1.0), 6), matched), query_row, member_rows, new_crowd, gap

    # -- articles that arrive together, undated ---------------------------------------------------

    def batch_order(self, items: Sequence[tuple[str, str, datetime, str | None]]) -> list[int]:
        """The order in which to decide articles (title, text, published, source) that arrived
        together without dates (they have no order of their own): sparse neighbourhoods first.
        Density is each article's crowding (mean of its best similarities) after a trial pass over
        the batch alone, in the given order. (Each pass signs an article just before deciding it,
        as a stream does: signatures depend on what was learned before, e.g. boilerplate.)"""
        if len(items) <= 1:
            return list(range(len(items)))
        trial = Deduplicator(self.settings)
        for number, (title, text, published, source) in enumerate(items, start=1):
            sig = trial.sign(title, text, source)
            decision = trial.decide(sig, published, source)
            trial.add(number, decision.story_id if decision.story_id is not None else number, sig, published, source)
        rows = [trial._row_of[number] for number in range(1, len(items) + 1)]
        density = trial._rows.crowd[rows].astype(np.float64).mean(axis=1)
        order: list[int] = np.argsort(density, kind="stable").tolist()
        return order

    def decide_batch(
        self, items: Sequence[tuple[str, str, datetime, str | None]], index: Callable[[int, Signature], int],
    ) -> list[tuple[int, int, Signature, Decision]]:
        """Decide and index articles (title, text, published, source) that arrived together without
        dates: ``batch_order``, then each signed, decided and indexed in that order, then
        ``refine_batch``. ``index(i, signature)`` returns item i's article id just before it is
        indexed (the daemon stores its row then, so ids follow the order decided). Returns (item,
        article id, signature, final decision) in the order decided; a new story carries the
        provisional id minus the id of the article that started it."""
        order = self.batch_order(items)
        placed: list[tuple[int, Signature, datetime, str | None, Decision]] = []
        crowding = 0.0
        for i in order:
            title, text, published, source = items[i]
            sig = self.sign(title, text, source)
            decision = self.decide(sig, published, source)
            article_id = index(i, sig)
            self.add(article_id, decision.story_id if decision.story_id is not None else -article_id, sig, published, source)
            placed.append((article_id, sig, published, source, decision))
            crowding += self.crowding_of([article_id])
        final = self.refine_batch(placed, crowding / len(placed)) if placed else []
        return [(i, p[0], p[1], d) for i, p, d in zip(order, placed, final, strict=True)]

    def refine_batch(self, items: Sequence[tuple[int, Signature, datetime, str | None, Decision]], crowd_at_add: float) -> list[Decision]:
        """Second thoughts on a batch of undated articles, once all of it is indexed: each (in the
        order given, the order they were added) is re-decided among the other stories and moves if
        another story now passes the join rule; it never splits off alone. An article that copies
        one decided after it becomes its copy; copies follow the article they copy.

        The threshold is lowered by what crowding grew during the batch (later articles raised the
        earlier ones' best similarities; the rule's crowding term would otherwise judge finished
        stories more strictly than the articles were judged). ``crowd_at_add`` is the mean crowding
        of the batch's rows just after each was added. Returns each item's final decision; its
        story is the article's story now (the index is updated)."""
        rows = self._rows
        at = np.array([self._row_of[item[0]] for item in items], dtype=np.int64)
        if not len(at):
            return []
        grown = float(rows.crowd[at].astype(np.float64).mean()) - crowd_at_add
        threshold = self.settings.report_threshold - CROWDING_WEIGHT * 0.5 * max(grown, 0.0)
        decisions = [replace(item[4], story_id=int(rows.story[row])) for item, row in zip(items, at.tolist(), strict=True)]
        position = {item[0]: i for i, item in enumerate(items)}
        for _ in range(BATCH_PASSES):
            moved = 0
            for i, (_article_id, sig, published, source, _first) in enumerate(items):
                if decisions[i].kind == "copy":
                    continue
                row, current = int(at[i]), int(rows.story[at[i]])
                self._leave(row, current)
                t = _ts(published)
                copied, j = self._best_copy(sig, t, self._band_keys(sig.minhash), exclude=row)
                if copied is not None:  # a copy of an article decided after it
                    current = int(rows.story[copied])
                    decisions[i] = Decision(current, "copy", round(j, 6), int(rows.article[copied]))
                    moved += 1
                    self._join(row, current)
                    continue
                q = self._tf(sig.counts) * self._idf(sig.terms) ** IDF_POWER
                q = q / (float(np.sqrt(q @ q)) or 1.0)
                candidates = self._candidates(sig.keys, t, own_terms=None)
                candidates = candidates[candidates != row]
                found = self._score_stories(sig, q, candidates, t, _source_key(source), threshold, counted=True)[0] if len(candidates) else None
                if found is not None and found.story_id != current:
                    current, decisions[i] = int(found.story_id), found  # type: ignore[arg-type]
                    moved += 1
                self._join(row, current)
            for i in range(len(items)):  # copies follow their original
                first = decisions[i]
                original = position.get(first.matched_article_id) if first.kind == "copy" and first.matched_article_id is not None else None
                if original is None:
                    continue
                row, target = int(at[i]), int(rows.story[at[original]])
                if int(rows.story[row]) != target:
                    self._leave(row, int(rows.story[row]))
                    self._join(row, target)
                    decisions[i] = replace(decisions[i], story_id=target)
            if not moved:
                break
        return decisions

    def _leave(self, row: int, story_id: int) -> None:
        members = self._stories[story_id]
        members.remove(row)
        if not members:
            del self._stories[story_id]

    def _join(self, row: int, story_id: int) -> None:
        """``row`` joins a story; members stay in the order they were indexed (article ids rise)."""
        members = self._stories.setdefault(story_id, [])
        members.append(row)
        if len(members) > 1 and self._rows.article[members[-2]] > self._rows.article[row]:
            members.sort(key=lambda r: int(self._rows.article[r]))
        self._rows.story[row] = story_id

    def _same_outlet(self, source: int, article_id: int | None) -> bool:
        """Whether an indexed article is by this outlet (an unknown outlet counts as the same)."""
        row = self._row_of.get(article_id) if article_id is not None else None
        return row is None or not source or int(self._rows.source[row]) == source

    def rename_story(self, old: int, new: int) -> None:
        """A story's id changes (a batch's provisional id becomes the stored one)."""
        members = self._stories.pop(old)
        self._rows.story[members] = new
        self._stories.setdefault(new, []).extend(members)

    def crowding_of(self, article_ids: Sequence[int]) -> float:
        """Mean crowding of indexed articles (see ``refine_batch``)."""
        at = [self._row_of[a] for a in article_ids]
        return float(self._rows.crowd[at].astype(np.float64).mean()) if at else 0.0

    def add(self, article_id: int, story_id: int, sig: Signature, published: datetime, source: str | None = None) -> None:
        """Index an article as a member of a story (after ``decide``, or when rebuilding)."""
        if article_id in self._row_of:
            return
        pending = self._pending
        key = _source_key(source)
        scored = pending[2] if pending is not None and pending[0] is sig and pending[1] == published else self._score(sig, published, key)
        self._pending = None
        # Document frequencies learn from every article but copies, in order: a reprint is not
        # new evidence that its words are common (twenty reprints made a story's own words so
        # common that a rewrite's rarest terms no longer found it). A slot named twice is still
        # counted once: fancy-index writes are not cumulative.
        decision = scored.decision
        if decision.kind != "copy" and scored.confident_gap is not None:
            self._learn_gap(scored.confident_gap)
        if decision.kind != "copy":
            self._df[sig.terms & self._mask] += 1.0
            self._n += 1
            if self._n % SHINGLE_HALVING == 0:
                self._seen_shingles >>= 1
        # Boilerplate counts, per outlet (``_boilerplate_key``): what an outlet repeats across its
        # stories. A copy of its own article (the same text in several section feeds) or, with
        # outlets unknown, of any article, is that article again, not a repetition; counted, the
        # fifth repost found its own text boilerplate.
        if len(sig.shingle_hashes) and not (decision.kind == "copy" and self._same_outlet(key, decision.matched_article_id)):
            slots = (sig.shingle_hashes ^ _boilerplate_key(key)[0]) & self._shingle_mask
            seen = self._seen_shingles[slots]
            self._seen_shingles[slots] = seen + (seen < 255)
        crowd_row = scored.query_row
        if decision.kind == "copy" and decision.matched_article_id in self._row_of:
            # A copy says nothing about how crowded its story's neighbourhood is: it neither raises
            # the members' crowding (with similarities near 1, four reprints locked every
            # independent report out of their story) nor keeps its own (near 1 against its
            # original): it takes its original's.
            crowd_row = self._rows.crowd[self._row_of[decision.matched_article_id]].copy()
        elif scored.member_crowd is not None:
            self._rows.crowd[scored.member_rows] = scored.member_crowd
        self._index(article_id, story_id, sig, published, crowd_row, key, scored.band_keys)

    def _learn_gap(self, seconds: float) -> None:
        """Learn how long this stream's stories last, and set the time decay from it.

        Wire-paced news runs for days (basil: 30% of very similar pairs are a day or more apart);
        a stream of one-day stories never joins across days (allsides: 97% the same day). A decay
        fitted to the first keeps the second's near-topic stories of other days as competitors; one
        fitted to the second cuts the first's multi-day stories. The very similar pairs are observed
        whatever the decision (the similarity before any decay), so a strong decay does not feed
        on itself."""
        self._gaps[min(int(seconds // 3600), GAP_HOURS - 1)] += 1.0
        if float(self._gaps.sum()) >= GAP_HALVING:
            self._gaps *= 0.5
        self._set_decay()

    def _set_decay(self) -> None:
        total = float(self._gaps.sum())
        if total < GAP_MIN_PAIRS:
            self._decay_per_day = self.settings.decay_per_day
            return
        hours = int(np.searchsorted(np.cumsum(self._gaps), GAP_QUANTILE * total)) + 1  # the quantile's bucket's upper edge
        self._decay_per_day = self.settings.decay_per_day * min(max(24.0 / hours, 1.0), MAX_DECAY_FACTOR)

    @property
    def decay_per_day(self) -> float:
        """The time decay now in force (learned from the stream; see ``_learn_gap``)."""
        return self._decay_per_day

    def _index(
        self, article_id: int, story_id: int, sig: Signature, published: datetime, crowd_row: np.ndarray | None, source: int,
        band_keys: np.ndarray | None = None,
    ) -> None:
        """Write one article's row (``_fill_columns``) and post its multimap entries."""
        n = min(len(sig.terms), MAX_TERMS)
        terms = np.zeros((1, MAX_TERMS), dtype=np.uint32)
        counts = np.zeros((1, MAX_TERMS), dtype=np.float32)
        terms[0, :n], counts[0, :n] = sig.terms[:n], sig.counts[:n]
        (row,) = self._fill_columns(
            np.array([article_id], dtype=np.int64), np.array([story_id], dtype=np.int64), np.array([_ts(published)]),
            np.array([source], dtype=np.uint32), np.array([sig.shingles], dtype=np.int32), sig.minhash[None, :], terms, counts,
            (np.zeros(CROWDING_K, dtype=np.float32) if crowd_row is None else crowd_row)[None, :],
        )
        self._postings.add(sig.keys, row)
        self._bands.add(self._band_keys(sig.minhash) if band_keys is None else band_keys, row)

    def _fill_columns(
        self, ids: np.ndarray, stories: np.ndarray, t: np.ndarray, sources: np.ndarray, shingles: np.ndarray,
        minhash: np.ndarray, terms: np.ndarray, counts: np.ndarray, crowd: np.ndarray,
    ) -> list[int]:
        """Write one row per article, column by column (``terms``/``counts``: MAX_TERMS columns, 0 in
        padding); each article joins its story. Returns the rows taken."""
        rows = self._rows
        at = rows.take_many(len(ids))
        rows.article[at], rows.story[at], rows.t[at], rows.source[at] = ids, stories, t, sources
        rows.shingles[at] = shingles
        rows.alive[at] = True
        rows.minhash[at] = minhash
        rows.terms[at], rows.tf[at] = terms, self._tf(counts)
        rows.crowd[at] = crowd
        taken: list[int] = at.tolist()
        self._row_of.update(zip(ids.tolist(), taken, strict=True))
        stories_of = self._stories
        for story_id, row in zip(stories.tolist(), taken, strict=True):
            members = stories_of.get(story_id)
            if members is None:
                stories_of[story_id] = [row]
            else:
                members.append(row)
        self._oldest = min(self._oldest, float(t.min()))
        self.last_article_id = max(self.last_article_id, int(ids.max()))
        return taken

    def evict(self, before: datetime) -> int:
        """Forget articles published before ``before`` (they stay in the database); returns how many."""
        cut = _ts(before)
        if cut <= self._oldest:
            return 0
        rows = self._rows
        live = rows.alive[: rows.high]
        gone = np.nonzero(live & (rows.t[: rows.high] < cut))[0]
        rows.alive[gone] = False
        rows.crowd[gone] = 0.0
        for row, article_id, story_id in zip(gone.tolist(), rows.article[gone].tolist(), rows.story[gone].tolist(), strict=True):
            del self._row_of[article_id]
            members = self._stories[story_id]
            members.remove(row)
            if not members:
                del self._stories[story_id]
        self._quarantine += gone.tolist()
        remaining = rows.t[: rows.high][rows.alive[: rows.high]]
        self._oldest = float(remaining.min()) if len(remaining) else float("inf")
        if len(self._quarantine) >= max(1024, len(self._row_of) // 4):
            # Drop the evicted rows' multimap entries in one pass; only then may their rows be reused.
            self._postings.compact(lambda r: rows.alive[r])
            self._bands.compact(lambda r: rows.alive[r])
            rows.free += self._quarantine
            self._quarantine = []
        if len(gone):
            _release_freed_memory()
        return len(gone)

    def signature_of(self, article_id: int) -> Signature | None:
        """The signature of an indexed article (without shingle hashes and index keys), if still in the window."""
        row = self._row_of.get(article_id)
        if row is None:
            return None
        rows = self._rows
        n = int(np.count_nonzero(rows.tf[row]))
        tf = rows.tf[row, :n]
        counts = np.where(tf >= 1.0, np.exp(tf - 1.0), tf).astype(np.float32)
        empty = np.zeros(0, dtype=np.uint32)
        return Signature(rows.minhash[row].copy(), int(rows.shingles[row]), empty, rows.terms[row, :n].copy(), counts, empty)

    def __len__(self) -> int:
        return len(self._row_of)

    # -- persistence of the learned statistics -------------------------------------------

    def snapshot(self) -> bytes:
        """Document frequencies, boilerplate counts, crowding scores and story gaps, as bytes."""
        ids = np.array(sorted(self._row_of), dtype=np.int64)
        crowd = self._rows.crowd[[self._row_of[a] for a in ids.tolist()]] if len(ids) else np.zeros((0, CROWDING_K), np.float32)
        parts = [self._df.tobytes(), self._seen_shingles.tobytes(), ids.astype("<i8").tobytes(), crowd.astype("<f4").tobytes(),
                 self._gaps.astype("<f8").tobytes()]
        header = struct.pack("<HQQQQ", SIGNATURE_VERSION, self._n, len(ids), DF_BITS, SHINGLE_BITS)
        return zlib.compress(header + b"".join(parts), 1)

    def load_snapshot(self, data: bytes) -> SnapshotCrowding:
        """Restore the statistics; returns the crowding rows of the articles indexed at snapshot time."""
        raw = zlib.decompress(data)
        version, n, count, df_bits, shingle_bits = struct.unpack_from("<HQQQQ", raw)
        if (version, df_bits, shingle_bits) != (SIGNATURE_VERSION, DF_BITS, SHINGLE_BITS):
            raise ValueError("snapshot made by another version")
        pos = struct.calcsize("<HQQQQ")
        self._df = np.frombuffer(raw, dtype=np.float32, count=1 << DF_BITS, offset=pos).copy()
        pos += 4 << DF_BITS
        self._seen_shingles = np.frombuffer(raw, dtype=np.uint8, count=1 << SHINGLE_BITS, offset=pos).copy()
        pos += 1 << SHINGLE_BITS
        ids = np.frombuffer(raw, dtype="<i8", count=count, offset=pos)
        pos += 8 * count
        crowd = np.frombuffer(raw, dtype="<f4", count=count * CROWDING_K, offset=pos).reshape(count, CROWDING_K)
        pos += 4 * count * CROWDING_K
        # (snapshots written before the decay was learned end here: it is learned again)
        has_gaps = len(raw) - pos >= 8 * GAP_HOURS
        self._gaps = np.frombuffer(raw, dtype="<f8", count=GAP_HOURS, offset=pos).astype(np.float64) if has_gaps else np.zeros(GAP_HOURS)
        self._set_decay()
        self._n = int(n)
        return SnapshotCrowding(ids.astype(np.int64), crowd.astype(np.float32))

    def restore(self, chunks: Iterable[SignatureChunk], crowd: SnapshotCrowding) -> int:
        """Index articles already counted in the loaded statistics (no learning, no scoring), chunk
        by chunk of stored signatures, decoded and written column-wise: the startup path. ``crowd``
        holds the snapshot's crowding rows. Returns how many were indexed."""
        done = 0
        entries: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"postings": [], "bands": []}
        sources: dict[str | None, int] = {}
        for chunk in chunks:
            fresh = np.fromiter((a not in self._row_of for a in chunk.article_ids.tolist()), dtype=bool, count=len(chunk.article_ids))
            if not fresh.all():
                keep = np.flatnonzero(fresh).tolist()
                chunk = SignatureChunk(chunk.article_ids[fresh], chunk.story_ids[fresh], chunk.published[fresh],
                                       [chunk.data[i] for i in keep], [chunk.sources[i] for i in keep])
            if not len(chunk.article_ids):
                continue
            cols = self._decode_columns(chunk.data)
            source_keys = np.array(
                [sources[x] if x in sources else sources.setdefault(x, _source_key(x)) for x in chunk.sources], dtype=np.uint32
            )
            taken = self._fill_columns(chunk.article_ids, chunk.story_ids, chunk.published, source_keys, cols.shingles,
                                       cols.minhash, cols.terms, cols.counts, crowd.of(chunk.article_ids))
            at32 = np.array(taken, dtype=np.int32)
            entries["postings"].append((cols.keys, np.repeat(at32, cols.key_counts)))
            bands = self._band_keys(cols.minhash)
            entries["bands"].append((bands.ravel(), np.repeat(at32, bands.shape[1])))
            done += len(taken)
        # The multimap entries go in at the end, as one sorted run each (in article order, like ``add``).
        for name, multimap in (("postings", self._postings), ("bands", self._bands)):
            if entries[name]:
                multimap.add_many(np.concatenate([k for k, _ in entries[name]]), np.concatenate([r for _, r in entries[name]]))
        return done

    def _decode_columns(self, blobs: Sequence[bytes]) -> _Columns:
        """``decode`` for many signatures at once, into column arrays (what ``restore`` needs: no
        shingle hashes). One pass of byte slicing per signature, then one buffer per column. Raises
        ValueError for a signature of another layout, or a damaged one."""
        n, p, width = len(blobs), self.settings.num_perm, 4 * MAX_TERMS
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
        return _Columns(
            shingles=h[:, 2].astype(np.int32),
            minhash=table[:, : 4 * p].copy().view("<u4"),  # one copy each: the column written out of the table
            terms=table[:, 4 * p : 4 * p + width].copy().view("<u4"),
            counts=table[:, 4 * p + width :].copy().view("<f4"),
            keys=np.frombuffer(b"".join(keys), dtype="<u4"),
            key_counts=h[:, 5],
        )

    def replay(self, items: Iterable[tuple[int, int, Signature, datetime, str | None]]) -> None:
        """Learn from and index articles stored after the last snapshot, exactly as when they arrived."""
        for article_id, story_id, sig, published, source in items:
            self.decide(sig, published, source)
            self.add(article_id, story_id, sig, published, source)
