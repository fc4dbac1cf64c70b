"""Clustering quality: pairwise and B-cubed precision / recall / F1 against gold labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    predicted_clusters: int
    gold_clusters: int
    items: int


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(predicted: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> Scores:
    """Compare a predicted assignment with gold labels; ids missing from ``predicted`` count as singletons."""
    pred = {item: predicted.get(item, ("__singleton__", item)) for item in gold}
    pred_sizes = Counter(pred.values())
    gold_sizes = Counter(gold.values())
    joint = Counter((pred[i], gold[i]) for i in gold)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    together_both = sum(pairs(n) for n in joint.values())
    together_pred = sum(pairs(n) for n in pred_sizes.values())
    together_gold = sum(pairs(n) for n in gold_sizes.values())
    pp = together_both / together_pred if together_pred else 1.0
    pr = together_both / together_gold if together_gold else 1.0
    n = len(gold) or 1
    # B-cubed: for each item, the share of its predicted cluster that is truly with it, and vice versa.
    bp = sum(joint[(pred[i], gold[i])] / pred_sizes[pred[i]] for i in gold) / n
    br = sum(joint[(pred[i], gold[i])] / gold_sizes[gold[i]] for i in gold) / n
    return Scores(pp, pr, _f1(pp, pr), bp, br, _f1(bp, br), len(pred_sizes), len(gold_sizes), len(gold))
