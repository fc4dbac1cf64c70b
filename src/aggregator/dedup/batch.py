"""Articles that arrive together without dates have no order of their own: they are decided as a
batch (sparse neighbourhoods first, then second thoughts once all of it is indexed). Used by the
daemon for a poll's undated entries and by ``eval`` for an undated file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from .index import ts
from .rule import CROWDING_WEIGHT, Decision
from .signature import Signature
from .statistics import IDF_POWER, source_key
from .statistics import tf as log_tf

if TYPE_CHECKING:
    from .deduplicator import Deduplicator

BATCH_PASSES = 3  # refine_batch: re-decisions of an undated batch (the second rarely moves anything)

Item = tuple[str, str, datetime, str | None, datetime]  # title, text, published, source, first seen


def batch_order(dedup: Deduplicator, items: Sequence[Item]) -> list[int]:
    """The order in which to decide articles that arrived together without dates (they have no
    order of their own): sparse neighbourhoods first. Density is each article's crowding (mean of
    its best similarities) after a trial pass over the batch alone, in the given order. (Each pass
    signs an article just before deciding it, as a stream does: signatures depend on what was
    learned before, e.g. boilerplate.)"""
    if len(items) <= 1:
        return list(range(len(items)))
    trial = type(dedup)(dedup.settings)
    for number, (title, text, published, source, first_seen) in enumerate(items, start=1):
        sig = trial.sign(title, text, source)
        scored = trial.rule.score(sig, published, source_key(source))
        story = scored.decision.story_id
        trial._learn(number, number if story is None else story, sig, published, source, first_seen, len(text), scored)
    rows = [trial.window.row_of[number] for number in range(1, len(items) + 1)]
    density = trial.window.rows.crowd[rows].astype(np.float64).mean(axis=1)
    order: list[int] = np.argsort(density, kind="stable").tolist()
    return order


def refine_batch(dedup: Deduplicator, items: Sequence[tuple[int, Signature, datetime, str | None, Decision]], crowd_at_add: float) -> list[Decision]:
    """Second thoughts on a batch of undated articles, once all of it is indexed: each (in the
    order given, the order they were added) is re-decided among the other stories and moves if
    another story now passes the join rule; it never splits off alone. An article that copies
    one decided after it becomes its copy; copies follow the article they copy.

    The threshold is lowered by what crowding grew during the batch (later articles raised the
    earlier ones' best similarities; the rule's crowding term would otherwise judge finished
    stories more strictly than the articles were judged). ``crowd_at_add`` is the mean crowding
    of the batch's rows just after each was added. Returns each item's final decision; its
    story is the article's story now (the index is updated)."""
    window, rule, stats = dedup.window, dedup.rule, dedup.stats
    rows = window.rows
    at = np.array([window.row_of[item[0]] for item in items], dtype=np.int64)
    if not len(at):
        return []
    grown = float(rows.crowd[at].astype(np.float64).mean()) - crowd_at_add
    threshold = dedup.settings.report_threshold - CROWDING_WEIGHT * 0.5 * max(grown, 0.0)
    decisions = [replace(item[4], story_id=int(rows.story[row])) for item, row in zip(items, at.tolist(), strict=True)]
    position = {item[0]: i for i, item in enumerate(items)}
    for _ in range(BATCH_PASSES):
        moved = 0
        for i, (_article_id, sig, published, source, _first) in enumerate(items):
            if decisions[i].kind == "copy":
                continue
            row, current = int(at[i]), int(rows.story[at[i]])
            window.leave(row, current)
            t = ts(published)
            copied, j = rule.best_copy(sig, t, window.band_keys(sig.minhash), exclude=row)
            if copied is not None:  # a copy of an article decided after it
                current = int(rows.story[copied])
                decisions[i] = Decision(current, "copy", round(j, 6), int(rows.article[copied]))
                moved += 1
                window.join(row, current)
                continue
            q = log_tf(sig.counts) * stats.idf(sig.terms) ** IDF_POWER
            q = q / (float(np.sqrt(q @ q)) or 1.0)
            candidates = rule.candidates(sig.keys, t, own_terms=None)
            candidates = candidates[candidates != row]
            found = rule.score_stories(sig, q, candidates, t, source_key(source), threshold, counted=True)[0] if len(candidates) else None
            if found is not None and found.story_id != current:
                current, decisions[i] = int(found.story_id), found  # type: ignore[arg-type]
                moved += 1
            window.join(row, current)
        for i in range(len(items)):  # copies follow their original
            first = decisions[i]
            original = position.get(first.matched_article_id) if first.kind == "copy" and first.matched_article_id is not None else None
            if original is None:
                continue
            row, target = int(at[i]), int(rows.story[at[original]])
            if int(rows.story[row]) != target:
                window.leave(row, int(rows.story[row]))
                window.join(row, target)
                decisions[i] = replace(decisions[i], story_id=target)
        if not moved:
            break
    return decisions
