"""Which story an article joins, and which variant of a story is canonical. No I/O.

Two tiers of sameness:

* **copy** — the same text republished (wire reprints, syndication). MinHash
  over word shingles of the normalised text; LSH proposes candidates, and a
  containment estimate above ``copy_threshold`` confirms them (containment, not
  Jaccard, so a trimmed reprint still counts).
* **report** — an independent write-up of the same event. Candidates come from
  an inverted index on each article's most heavily weighted terms (bounded by
  the sliding window, so lookups stay flat as history grows). A candidate
  story is scored as a whole: the mean TF-IDF cosine to its members, not its
  single closest member, so stories do not chain through one weak link.

The index covers a sliding window of ``window_hours``; older stories live on
in the database only. Signatures are persisted (``encode``/``decode``) and the
index is rebuilt from them on start.
"""

from __future__ import annotations

import json
import math
import re
import struct
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

from datasketch import LeanMinHash, MinHash, MinHashLSH

from .config import DedupSettings

DecisionKind = Literal["new", "copy", "report"]

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    """a an the and or but if of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why how all any both each
    few more most other some such no nor not only own same so than too very s t can will just don should now is are
    was were be been being have has had having do does did doing i me my we our you your he him his she her it its
    they them their what which who whom this that these those am would could also said says say according told
    le la les un une des du de et ou en au aux ce ces cette qui que quoi dans par pour sur avec sans sous est sont
    été être a ont il elle ils elles on nous vous leur leurs son sa ses se ne pas plus selon lors après avant
    mr mrs ms new one two year years""".split()
)


def normalize(text: str) -> str:
    """Case-folded, accent-free, compatibility-normalised text (works for any script)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Unicode word tokens of normalised text."""
    return _WORD.findall(normalize(text))


def content_terms(tokens: Iterable[str]) -> list[str]:
    return [t for t in tokens if t not in _STOPWORDS and (len(t) > 2 or t.isdigit()) and not t.startswith("_")]


@dataclass(frozen=True)
class Signature:
    """What the index keeps per article; ``encode`` turns it into bytes for storage."""

    minhash: LeanMinHash
    shingles: int  # distinct shingles hashed into the MinHash
    terms: tuple[tuple[str, int], ...]  # content-term counts, most frequent first


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


FULL_REPORT_FRACTION = 0.5


C = TypeVar("C", bound=CanonicalCandidate)


def choose_canonical(members: Sequence[C]) -> C:
    """The earliest *full* report: first published among members whose text is at least half
    as long as the story's longest (a teaser or stub never leads, however early).
    Ties go to the first seen, then to the lowest article id, so the choice is stable."""
    longest = max(m.text_length for m in members)
    full = [m for m in members if m.text_length >= FULL_REPORT_FRACTION * longest]
    return min(full, key=lambda m: (m.published_at, m.first_seen_at, m.article_id))


@dataclass
class _Doc:
    article_id: int
    story_id: int
    published: datetime
    signature: Signature
    keys: tuple[str, ...]


class Deduplicator:
    """The in-memory candidate index over the sliding window, and the assignment rule."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self.scheme = f"minhash:affine32:p{settings.num_perm}:s{settings.seed}:w{settings.shingle_size}:terms-v1"
        self._template = MinHash(num_perm=settings.num_perm, seed=settings.seed, scheme="affine32")
        self._lsh = MinHashLSH(threshold=settings.copy_threshold, num_perm=settings.num_perm)
        self._docs: dict[int, _Doc] = {}
        self._stories: dict[int, list[int]] = defaultdict(list)
        self._postings: dict[str, set[int]] = defaultdict(set)
        self._df: Counter[str] = Counter()
        self._window = timedelta(hours=settings.window_hours)

    # -- signatures --------------------------------------------------------------

    def sign(self, title: str, text: str) -> Signature:
        tokens = words(f"{title}\n{text}")
        k = self.settings.shingle_size
        shingles = {" ".join(tokens[i : i + k]).encode("utf-8") for i in range(max(1, len(tokens) - k + 1))}
        mh = MinHash(num_perm=self.settings.num_perm, seed=self.settings.seed, scheme="affine32", permutations=self._template.permutations)
        mh.update_batch(shingles)
        counts = Counter(content_terms(tokens))
        counts.update(content_terms(words(title)))  # a headline's words count twice
        terms = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:64])
        return Signature(LeanMinHash(mh), len(shingles), terms)

    def encode(self, sig: Signature) -> bytes:
        buf = bytearray(sig.minhash.bytesize())
        sig.minhash.serialize(buf, byteorder="<")
        terms = json.dumps(sig.terms, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return struct.pack("<II", len(buf), sig.shingles) + bytes(buf) + terms

    def decode(self, data: bytes) -> Signature:
        size, shingles = struct.unpack_from("<II", data)
        minhash = LeanMinHash.deserialize(data[8 : 8 + size], byteorder="<")
        terms = tuple((str(t), int(c)) for t, c in json.loads(data[8 + size :].decode("utf-8")))
        return Signature(minhash, shingles, terms)

    # -- similarity ---------------------------------------------------------------

    def containment(self, a: Signature, b: Signature) -> float:
        """Estimated share of the smaller text's shingles found in the other."""
        j = float(a.minhash.jaccard(b.minhash))
        if j <= 0:
            return 0.0
        inter = j * (a.shingles + b.shingles) / (1.0 + j)
        return min(1.0, inter / max(1, min(a.shingles, b.shingles)))

    def _weights(self, sig: Signature) -> dict[str, float]:
        n = len(self._docs) + 1
        vec = {t: (1.0 + math.log(c)) * (math.log((n + 1) / (self._df.get(t, 0) + 1)) + 1.0) for t, c in sig.terms}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {t: w / norm for t, w in vec.items()}

    def cosine(self, a: Signature, b: Signature) -> float:
        wa, wb = self._weights(a), self._weights(b)
        if len(wb) < len(wa):
            wa, wb = wb, wa
        return sum(w * wb.get(t, 0.0) for t, w in wa.items())

    def relation(self, a: Signature, b: Signature) -> tuple[Literal["copy", "report"], float]:
        """How two articles relate: ('copy', containment) or ('report', cosine)."""
        contained = self.containment(a, b)
        if contained >= self.settings.copy_threshold:
            return "copy", contained
        return "report", max(self.cosine(a, b), 0.0)

    # -- assignment ------------------------------------------------------------------

    def _keys(self, sig: Signature) -> tuple[str, ...]:
        weights = self._weights(sig)
        return tuple(sorted(weights, key=lambda t: (-weights[t], t))[: self.settings.top_terms])

    def decide(self, sig: Signature, published: datetime) -> Decision:
        """The story this article should join, or a new one. Does not change the index."""

        def in_window(doc: _Doc) -> bool:
            return abs(doc.published - published) <= self._window

        # Tier 1: copies.
        best_copy: tuple[float, int] | None = None
        for key in self._lsh.query(sig.minhash):
            doc = self._docs.get(int(key))
            if doc is None or not in_window(doc):
                continue
            contained = self.containment(sig, doc.signature)
            if contained >= self.settings.copy_threshold and (best_copy is None or (contained, -doc.article_id) > (best_copy[0], -best_copy[1])):
                best_copy = (contained, doc.article_id)
        if best_copy is not None:
            doc = self._docs[best_copy[1]]
            return Decision(doc.story_id, "copy", best_copy[0], doc.article_id)
        # Tier 2: reports, scored against each candidate story as a whole.
        candidate_stories: set[int] = set()
        for key in self._keys(sig):
            for article_id in self._postings.get(key, ()):
                candidate_stories.add(self._docs[article_id].story_id)
        mine = self._weights(sig)
        best: tuple[float, int, int] | None = None  # (score, -story_id, matched article)
        for story_id in sorted(candidate_stories):
            members = [self._docs[a] for a in self._stories[story_id] if in_window(self._docs[a])]
            if not members:
                continue
            sims = []
            for m in members:
                theirs = self._weights(m.signature)
                hours = abs((m.published - published).total_seconds()) / 3600.0
                decay = 0.5 ** (hours / self.settings.half_life_hours)
                sims.append((decay * sum(w * theirs.get(t, 0.0) for t, w in mine.items()), m.article_id))
            score = sum(s for s, _ in sims) / len(sims)
            matched = max(sims)[1]
            if best is None or (score, -story_id) > (best[0], best[1]):
                best = (score, -story_id, matched)
        if best is not None and best[0] >= self.settings.report_threshold:
            return Decision(-best[1], "report", best[0], best[2])
        return Decision(None, "new", 1.0)

    def add(self, article_id: int, story_id: int, sig: Signature, published: datetime) -> None:
        """Index an article as a member of a story."""
        if article_id in self._docs:
            return
        for term, _ in sig.terms:
            self._df[term] += 1
        doc = _Doc(article_id, story_id, published, sig, self._keys(sig))
        self._docs[article_id] = doc
        self._stories[story_id].append(article_id)
        for key in doc.keys:
            self._postings[key].add(article_id)
        self._lsh.insert(str(article_id), sig.minhash, check_duplication=False)

    def remove(self, article_id: int) -> None:
        doc = self._docs.pop(article_id, None)
        if doc is None:
            return
        for term, _ in doc.signature.terms:
            self._df[term] -= 1
            if self._df[term] <= 0:
                del self._df[term]
        members = self._stories[doc.story_id]
        members.remove(article_id)
        if not members:
            del self._stories[doc.story_id]
        for key in doc.keys:
            posting = self._postings[key]
            posting.discard(article_id)
            if not posting:
                del self._postings[key]
        self._lsh.remove(str(article_id))

    def evict(self, before: datetime) -> int:
        """Forget articles published before ``before``; returns how many."""
        old = [a for a, d in self._docs.items() if d.published < before]
        for article_id in old:
            self.remove(article_id)
        return len(old)

    def signature_of(self, article_id: int) -> Signature | None:
        doc = self._docs.get(article_id)
        return doc.signature if doc else None

    def __len__(self) -> int:
        return len(self._docs)


