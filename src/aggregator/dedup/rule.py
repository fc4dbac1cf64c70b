"""The join rule: which story an article joins, and as what. The copy tier looks for a near-identical
text among the articles sharing a MinHash band; the report tier scores each candidate story as a
whole (mean similarity of its members, less crowding, time decay and the same-outlet penalty) and
takes the best one if it clears the threshold by a margin over the runner-up. Reads the window and
the statistics; changes nothing (``Scored`` carries the updates ``Deduplicator.add`` applies)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from ..config import DedupSettings
from .index import Window, ts
from .postings import low16_table
from .signature import Signature
from .statistics import CONFIDENT_SIM, CROWDING_K, IDF_POWER, Statistics
from .statistics import tf as log_tf
from .tokens import MAX_TERMS

DecisionKind = Literal["new", "copy", "report"]

INDEX_TERMS = 25  # rarest terms posted to / looked up in the inverted index
POSTING_CAP = 400  # most recent articles kept per posting list
MAX_CANDIDATES = 200  # best-voted candidate articles scored exactly
MEMBER_CAP = 16  # members compared per story: the first 4 and the most recent
CROWDING_WEIGHT = 1.0
MARGIN_WEIGHT = 1.0
RUNNER_FLOOR = 0.0  # the runner-up score assumed when only one story is a candidate
MIN_SHARED_TERMS = 2  # one shared word is not a story: a text-less item titled "Elwyn" joined a storm in Port Elwyn
SAME_SOURCE_PENALTY = 0.1  # subtracted from the score of a story that has a member by the same outlet
COPY_LSH_THRESHOLD = 0.3
COPY_MIN_JACCARD = 0.3  # floor for the containment rule


@dataclass(frozen=True)
class Decision:
    """Where an article goes: a new story, or an existing one as a copy or a report."""

    story_id: int | None
    kind: DecisionKind
    similarity: float
    matched_article_id: int | None = None


@dataclass(frozen=True)
class Scored:
    """A decision plus the crowding updates it implies (applied only when the article is added)."""

    decision: Decision
    query_row: np.ndarray
    member_rows: np.ndarray  # rows of the members scored
    member_crowd: np.ndarray | None  # their crowding scores with this article counted
    band_keys: np.ndarray  # the article's LSH band keys (posted on add)
    confident_gap: float | None  # seconds to its most similar member, if that one is very similar



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



def top_terms(terms: np.ndarray, tf: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """The rarest of an article's terms (by tf-idf): the keys it is posted under in the inverted index."""
    if not len(terms):
        return terms
    score = tf * idf
    if not (score > 0).any():  # a fresh index (every term in every article so far): rank by frequency alone
        score = tf * 1e-6
    order = np.lexsort((terms, -score))[:INDEX_TERMS]  # ties broken on the term hash: deterministic
    top: np.ndarray = terms[order[score[order] > 0]]
    return top


class Rule:
    """Scores an article against the window's stories, for both tiers, and decides where it joins."""

    def __init__(self, settings: DedupSettings, stats: Statistics, window: Window) -> None:
        self.settings = settings
        self.stats = stats
        self.window = window

    def containment(self, a: Signature, b: Signature) -> tuple[float, float]:
        """(estimated Jaccard, estimated share of the smaller shingle set found in the other)."""
        j, contained = _containment(a.minhash, a.shingles, b.minhash[None, :], np.array([b.shingles]))
        return float(j[0]), float(contained[0])

    def is_copy(self, j: np.ndarray, contained: np.ndarray) -> np.ndarray:
        s = self.settings
        is_copy: np.ndarray = (j >= s.copy_jaccard) | ((contained >= s.copy_containment) & (j >= COPY_MIN_JACCARD))
        return is_copy

    def cosine(self, a: Signature, b: Signature) -> float:
        """TF-IDF cosine of two articles under the current document frequencies."""
        wa = log_tf(a.counts) * self.stats.idf(a.terms) ** IDF_POWER
        wb = log_tf(b.counts) * self.stats.idf(b.terms) ** IDF_POWER
        common, ia, ib = np.intersect1d(a.terms, b.terms, assume_unique=True, return_indices=True)
        if not len(common):
            return 0.0
        norm = float(np.sqrt(wa @ wa) * np.sqrt(wb @ wb)) or 1.0
        return float(wa[ia] @ wb[ib]) / norm

    def relation(self, a: Signature, b: Signature) -> tuple[Literal["copy", "report"], float]:
        """How two articles relate: ('copy', estimated Jaccard) or ('report', cosine)."""
        j, contained = self.containment(a, b)
        if self.is_copy(np.array(j), np.array(contained)):
            return "copy", j
        return "report", max(self.cosine(a, b), 0.0)

    # -- assignment ------------------------------------------------------------------

    def score(self, sig: Signature, published: datetime, source: int) -> Scored:
        t = ts(published)
        own = np.ones(len(sig.terms))  # this article counts in its own document frequencies
        rows = self.window.rows
        # Tier 1: copies, among the articles sharing a MinHash band.
        band_keys = self.window.band_keys(sig.minhash)
        best_copy, best_j = self.best_copy(sig, t, band_keys)
        # Tier 2: reports (always scored: the crowding statistics learn from every article).
        idf = self.stats.idf(sig.terms, own)
        tf = log_tf(sig.counts)
        query_w = tf * idf**IDF_POWER
        query_w = query_w / (float(np.sqrt(query_w @ query_w)) or 1.0)
        candidates = self.candidates(sig.keys, t, own_terms=sig.terms)
        report, query_row, member_rows, member_crowd, gap = self.score_stories(sig, query_w, candidates, t, source)
        if best_copy is not None:
            decision = Decision(int(rows.story[best_copy]), "copy", round(best_j, 6), int(rows.article[best_copy]))
        elif report is not None:
            decision = report
        else:
            decision = Decision(None, "new", 1.0)
        return Scored(decision, query_row, member_rows, member_crowd, band_keys, gap)

    def best_copy(self, sig: Signature, t: float, band_keys: np.ndarray, exclude: int = -1) -> tuple[int | None, float]:
        """The row this article copies (the most similar; ties go to the earliest article) and the
        estimated Jaccard, among the articles sharing a MinHash band; (None, 0.0) if none."""
        rows = self.window.rows
        _, hits = self.window.band_map.lookup(band_keys)
        hits = np.unique(hits)
        hits = hits[rows.alive[hits] & self.window.in_window(t, rows.t[hits]) & (hits != exclude)]
        if not len(hits):
            return None, 0.0
        j, contained = _containment(sig.minhash, sig.shingles, rows.minhash[hits], rows.shingles[hits])
        copies = np.nonzero(self.is_copy(j, contained))[0]
        if not len(copies):
            return None, 0.0
        pick = copies[np.lexsort((rows.article[hits[copies]], -j[copies]))[0]]
        return int(hits[pick]), float(j[pick])

    def candidates(self, keys: np.ndarray, t: float, own_terms: np.ndarray | None) -> np.ndarray:
        """Rows of articles sharing rare terms with the query, best idf-weighted votes first.
        ``own_terms``: the query's terms, counted in the df as it is not indexed yet (None: it is)."""
        if not len(keys):
            return np.zeros(0, dtype=np.int64)
        rows = self.window.rows
        extra = None if own_terms is None else (keys[:, None] == own_terms[None, :]).any(axis=1).astype(np.float64)  # np.isin, without its overhead
        which, hits = self.window.postings.lookup(keys, cap=POSTING_CAP)
        live = rows.alive[hits]
        which, hits = which[live], hits[live]
        if not len(hits):
            return np.zeros(0, dtype=np.int64)
        weights = self.stats.idf(keys, extra)[which]
        found, inverse = np.unique(hits, return_inverse=True)
        votes = np.bincount(inverse, weights=weights)
        order = np.lexsort((rows.article[found], -votes))[:MAX_CANDIDATES]
        best = found[order]
        inside: np.ndarray = best[self.window.in_window(t, rows.t[best])]
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
            extra: np.ndarray = ((candidate ^ terms) & self.stats.mask) == 0
            return qvals, extra
        extra = _member_of(terms & self.stats.mask, np.sort(query_terms & self.stats.mask)).astype(np.float64)
        order = np.argsort(query_terms, kind="stable")
        sorted_terms, sorted_w = query_terms[order], query_w[order]
        if len(sorted_terms):
            pos = np.minimum(np.searchsorted(sorted_terms, terms), len(sorted_terms) - 1)
            qvals = np.where(sorted_terms[pos] == terms, sorted_w[pos], 0.0)
        else:
            qvals = np.zeros(terms.shape)
        return qvals, extra

    def score_stories(
        self, sig: Signature, query_w: np.ndarray, candidates: np.ndarray, t: float, source: int, threshold: float | None = None,
        counted: bool = False,
    ) -> tuple[Decision | None, np.ndarray, np.ndarray, np.ndarray | None, float | None]:
        rows = self.window.rows
        empty = np.zeros(CROWDING_K, dtype=np.float32)
        names = list(dict.fromkeys(rows.story[candidates].tolist()))
        groups = list(map(self.window.stories.__getitem__, names))
        sizes = list(map(len, groups))
        if sizes and max(sizes) > MEMBER_CAP:
            groups = [m if len(m) <= MEMBER_CAP else m[:4] + m[-(MEMBER_CAP - 4) :] for m in groups]
            sizes = list(map(len, groups))
        member_rows = np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64, count=sum(sizes))
        inside = self.window.in_window(t, rows.t[member_rows])
        member_rows, own_idx = member_rows[inside], np.repeat(np.arange(len(names)), sizes)[inside]
        if not len(member_rows):
            return None, empty, member_rows, None, None
        terms, tf = rows.terms[member_rows], rows.tf[member_rows]
        # For each member term: the query's weight for it (0 when the query lacks it), and whether
        # the query has a term in the same df slot (it counts in the df then).
        qvals, extra = self._query_lookup(sig.terms, query_w, terms)
        # member weights under the current df, counting the query's own terms (by df slot) too
        # (``counted``: the query is indexed already, as in a batch's refinement: it is in the df once)
        w = self.stats.idf(terms, None if counted else extra)
        if IDF_POWER == 0.5:  # what ``w ** 0.5`` computes
            np.sqrt(w, out=w)
        else:
            w **= IDF_POWER
        np.multiply(tf, w, out=w)
        sims = (w * qvals).sum(axis=1) / np.maximum(np.sqrt((w * w).sum(axis=1)), 1e-12)
        apart = np.abs(t - rows.t[member_rows])
        decay = self.stats.decay_per_day * apart / 86400.0
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
