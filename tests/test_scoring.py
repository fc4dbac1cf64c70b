"""score(): pairwise and B-cubed precision/recall/F1 on small examples worked out by hand.

The running example: gold stories {a, b} and {c, d, e}.
"""

from __future__ import annotations

import pytest

from aggregator.tools.scoring import Scores, score

GOLD = {"a": "g1", "b": "g1", "c": "g2", "d": "g2", "e": "g2"}  # gold pairs: ab | cd ce de  → 4


def close(s: Scores, **expected: float) -> None:
    for name, value in expected.items():
        assert getattr(s, name) == pytest.approx(value), name


def test_perfect_clustering_with_other_labels() -> None:
    s = score({"a": 7, "b": 7, "c": 3, "d": 3, "e": 3}, GOLD)
    close(s, pairwise_precision=1, pairwise_recall=1, pairwise_f1=1, bcubed_precision=1, bcubed_recall=1, bcubed_f1=1)
    assert (s.predicted_clusters, s.gold_clusters, s.items) == (2, 2, 5)


def test_all_singletons() -> None:
    # pairwise: no predicted pairs → precision 1 by convention, recall 0/4.
    # B-cubed precision: every item alone → 1. Recall: a,b 1/2 each; c,d,e 1/3 each → (1 + 1) / 5 = 0.4.
    s = score({k: k for k in GOLD}, GOLD)
    close(s, pairwise_precision=1.0, pairwise_recall=0.0, pairwise_f1=0.0)
    close(s, bcubed_precision=1.0, bcubed_recall=0.4, bcubed_f1=2 * 0.4 / 1.4)
    assert s.predicted_clusters == 5


def test_missing_predictions_count_as_singletons() -> None:
    assert score({}, GOLD) == score({k: k for k in GOLD}, GOLD)
    # a partial prediction: only c, d, e given (together); a and b fall back to singletons
    s = score({"c": 1, "d": 1, "e": 1}, GOLD)
    close(s, pairwise_precision=1.0, pairwise_recall=3 / 4, bcubed_precision=1.0, bcubed_recall=(0.5 + 0.5 + 3) / 5)
    assert s.predicted_clusters == 3


def test_all_in_one() -> None:
    # pairwise: 10 predicted pairs, 4 of them gold → precision 0.4, recall 1.
    # B-cubed precision: a,b 2/5; c,d,e 3/5 → (0.4·2 + 0.6·3) / 5 = 0.52. Recall 1.
    s = score({k: "all" for k in GOLD}, GOLD)
    close(s, pairwise_precision=0.4, pairwise_recall=1.0, pairwise_f1=2 * 0.4 / 1.4)
    close(s, bcubed_precision=0.52, bcubed_recall=1.0, bcubed_f1=2 * 0.52 / 1.52)
    assert s.predicted_clusters == 1


def test_one_item_misplaced() -> None:
    # predicted {a, b, c} and {d, e}
    # pairwise: predicted pairs ab ac bc de = 4, correct ab de = 2 → P = R = 2/4.
    # B-cubed P: a,b 2/3; c 1/3; d,e 2/2 → (2/3 + 2/3 + 1/3 + 1 + 1) / 5 = 11/15.
    # B-cubed R: a,b 2/2; c 1/3; d,e 2/3 → (1 + 1 + 1/3 + 2/3 + 2/3) / 5 = 11/15.
    s = score({"a": "X", "b": "X", "c": "X", "d": "Y", "e": "Y"}, GOLD)
    close(s, pairwise_precision=0.5, pairwise_recall=0.5, pairwise_f1=0.5)
    close(s, bcubed_precision=11 / 15, bcubed_recall=11 / 15, bcubed_f1=11 / 15)


def test_precision_and_recall_are_not_swapped() -> None:
    # over-merging hurts precision, over-splitting hurts recall
    merged = score({k: "all" for k in GOLD}, GOLD)
    split = score({k: k for k in GOLD}, GOLD)
    assert merged.bcubed_precision < merged.bcubed_recall == 1.0
    assert split.bcubed_recall < split.bcubed_precision == 1.0
    assert merged.pairwise_precision < merged.pairwise_recall
    assert split.pairwise_recall < split.pairwise_precision


def test_unequal_f1() -> None:
    # gold {a,b,c,d}; predicted {a,b} {c} {d}
    # pairwise: gold pairs 6, predicted 1 (correct) → P 1, R 1/6, F1 = 2·(1/6)/(7/6) = 2/7.
    # B-cubed R: a,b 2/4; c,d 1/4 → (0.5 + 0.5 + 0.25 + 0.25) / 4 = 0.375; P 1 → F1 = 0.75/1.375 = 6/11.
    gold = dict.fromkeys("abcd", "g")
    s = score({"a": 1, "b": 1, "c": 2, "d": 3}, gold)
    close(s, pairwise_precision=1.0, pairwise_recall=1 / 6, pairwise_f1=2 / 7)
    close(s, bcubed_precision=1.0, bcubed_recall=0.375, bcubed_f1=6 / 11)


def test_items_not_in_gold_are_ignored() -> None:
    s = score({"a": 1, "b": 1, "c": 2, "d": 2, "e": 2, "zz": 1}, GOLD)
    assert s.items == 5
    close(s, pairwise_precision=1, pairwise_recall=1, bcubed_precision=1, bcubed_recall=1)


def test_labels_are_independent_between_gold_and_prediction() -> None:
    # prediction reuses gold's label names crosswise; only the grouping matters
    s = score({"a": "g2", "b": "g2", "c": "g1", "d": "g1", "e": "g1"}, GOLD)
    close(s, pairwise_f1=1, bcubed_f1=1)


def test_scores_are_bounded() -> None:
    s = score({"a": 1, "b": 2, "c": 1, "d": 2, "e": 1}, GOLD)
    for name in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_precision", "bcubed_recall", "bcubed_f1"):
        assert 0.0 <= getattr(s, name) <= 1.0
