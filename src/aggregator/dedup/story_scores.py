"""The report tier part by part, for the explanations (``dedup/explain.py``): the per-story scores
of ``Rule.score_stories`` with each part kept apart (similarity, crowding, decay, the same-outlet
penalty), and each member's own. ``Rule.score_stories`` does not return them (it keeps them in
locals), so ``story_scores`` repeats its arithmetic; the explanation checks that the story it ranks
first is the story the rule chose."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .deduplicator import Deduplicator
from .index import ts
from .rule import CROWDING_WEIGHT, MEMBER_CAP, SAME_SOURCE_PENALTY
from .signature import Signature
from .statistics import IDF_POWER, source_key
from .statistics import tf as log_tf
from .tokens import MAX_TERMS


@dataclass(frozen=True)
class StoryScore:
    """One candidate story's score for the later article (``Rule.score_stories``, part by part;
    the means are weighted by each member's share of a full term vector, as the rule's are)."""

    story_id: int
    score: float  # similarity - crowding - decay, averaged; less the penalty
    similarity: float  # mean cosine to the members scored
    crowding: float  # mean of ½ · each member's crowding
    decay: float  # mean of decay per day × days apart
    same_outlet_penalty: float  # SAME_SOURCE_PENALTY when a member is by the same outlet, else 0
    members: int  # members scored (in the window, at most MEMBER_CAP)
    shared_terms: int  # the most terms one member shares with the article
    candidate: bool  # found by the rare-term index (False: scored here only to explain)


@dataclass(frozen=True)
class MemberScore:
    """The earlier article as a member of its story, in the later article's scoring."""

    similarity: float  # cosine, with the later article counted in the document frequencies
    crowding: float  # ½ · mean of its 5 best similarities so far
    decay: float  # decay per day × days apart
    adjusted: float  # similarity - crowding - decay
    weight: float  # distinct terms ÷ 80 (its weight in its story's mean)


def story_scores(dedup: Deduplicator, sig: Signature, published: datetime, source: str | None,
                 stories: Sequence[int], candidates: frozenset[int]) -> tuple[list[StoryScore], dict[int, MemberScore]]:
    """``Rule.score_stories``' arithmetic for ``stories``, each part kept: per story its score and
    parts, and per member scored its own (by article id). Changes nothing.

    (What to refactor: ``score_stories`` could return these arrays, ``story_scores`` would then be
    a view of them and this copy would go.)"""
    rule, window, stats = dedup.rule, dedup.window, dedup.stats
    rows = window.rows
    t = ts(published)
    key = source_key(source)
    query_w = log_tf(sig.counts) * stats.idf(sig.terms, np.ones(len(sig.terms))) ** IDF_POWER
    query_w = query_w / (float(np.sqrt(query_w @ query_w)) or 1.0)
    scores: list[StoryScore] = []
    members: dict[int, MemberScore] = {}
    for story_id in stories:
        group = window.stories.get(story_id, [])
        if len(group) > MEMBER_CAP:
            group = group[:4] + group[-(MEMBER_CAP - 4):]
        member_rows = np.array(group, dtype=np.int64)
        if len(member_rows):
            member_rows = member_rows[window.in_window(t, rows.t[member_rows])]
        if not len(member_rows):
            continue
        terms, tf = rows.terms[member_rows], rows.tf[member_rows]
        qvals, extra = rule._query_lookup(sig.terms, query_w, terms)
        w = stats.idf(terms, extra) ** IDF_POWER * tf
        sims = (w * qvals).sum(axis=1) / np.maximum(np.sqrt((w * w).sum(axis=1)), 1e-12)
        decay = stats.decay_per_day * np.abs(t - rows.t[member_rows]) / 86400.0
        crowding = CROWDING_WEIGHT * 0.5 * rows.crowd[member_rows].mean(axis=1)
        adjusted = sims - crowding - decay
        evidence = np.count_nonzero(tf, axis=1) / MAX_TERMS
        total = max(float(evidence.sum()), 1e-9)
        penalty = SAME_SOURCE_PENALTY if key and bool((rows.source[member_rows] == key).any()) else 0.0
        scores.append(StoryScore(
            story_id=int(story_id), score=float((adjusted * evidence).sum() / total) - penalty,
            similarity=float((sims * evidence).sum() / total), crowding=float((crowding * evidence).sum() / total),
            decay=float((decay * evidence).sum() / total), same_outlet_penalty=penalty, members=len(member_rows),
            shared_terms=int(np.count_nonzero(qvals > 0, axis=1).max()), candidate=int(story_id) in candidates,
        ))
        for i, row in enumerate(member_rows.tolist()):
            members[int(rows.article[row])] = MemberScore(float(sims[i]), float(crowding[i]), float(decay[i]), float(adjusted[i]),
                                                          float(evidence[i]))
    return scores, members


def _order(scores: list[StoryScore]) -> list[StoryScore]:
    """Best first; ties to the story listed first (``scores`` in the order of the rule's candidate
    rows: that is how the rule breaks them)."""
    return sorted(scores, key=lambda s: -s.score)
