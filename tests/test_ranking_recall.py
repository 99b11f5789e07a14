"""The ranking view, over-recall and tier stability on hand-checkable and synthetic score sets."""

from __future__ import annotations

import math

import pytest

from taosr1_plugins.deploy.cumpt import NEVER, CumPT, tier_margin
from taosr1_plugins.evaluation.metrics import compute_metrics
from taosr1_plugins.evaluation.over_recall import (
    irrelevant_levels,
    over_recall,
    over_recall_from_confusion,
    shown_precision_recall,
    tradeoff_curve,
)
from taosr1_plugins.evaluation.ranking import ranking_metrics, tiered_score
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import ScoreRow, ScoreSet
from taosr1_plugins.evaluation.stability import tier_stability

ESCI = get_scheme("esci")  # E, S, C, I


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def test_ndcg_by_hand_and_queries_with_one_level_are_left_out():
    # query a: gold E, I, S (indices 0, 3, 1) -> gains 7, 0, 3; the scores put I above S
    queries = ["a", "a", "a", "b", "b"]
    gold = [0, 3, 1, 2, 2]  # query b: both Complement, no order to get right
    scores = [0.9, 0.5, 0.1, 0.3, 0.7]
    m = ranking_metrics(queries, gold, scores, n_levels=4)
    expected = dcg([7, 0, 3]) / dcg([7, 3, 0])
    assert m.ndcg == pytest.approx(expected) and m.ndcg_at_10 == pytest.approx(expected)
    assert (m.queries, m.skipped_queries) == (1, 1)
    assert ranking_metrics(queries, gold, [0.9, 0.1, 0.5, 0, 0], 4).ndcg == pytest.approx(1.0)
    # k cuts the list: with k=1 only the top item counts, and it is the best one
    assert ranking_metrics(queries, gold, scores, 4, cutoff=1).ndcg_at_10 == pytest.approx(1.0)
    assert ranking_metrics(["a"], [0], [1.0], 4).ndcg is None


def test_tied_scores_share_gains_so_a_constant_score_is_no_lucky_order():
    queries, gold = ["q"] * 4, [0, 3, 3, 3]  # one Exact among three Irrelevant
    constant = ranking_metrics(queries, gold, [0.0] * 4, 4).ndcg
    best_first = ranking_metrics(queries, gold, [1.0, 0, 0, 0], 4).ndcg
    worst_first = ranking_metrics(queries, gold, [0.0, 1, 1, 1], 4).ndcg
    assert worst_first < constant < best_first == pytest.approx(1.0)
    # the tie average: the Exact item equally likely at each of the four positions
    assert constant == pytest.approx(sum(1 / math.log2(i + 2) for i in range(4)) / 4)


def test_tier_comes_before_the_expected_level():
    sure_s = [0.0, 1.0, 0.0, 0.0]  # all mass on S: expected level 2/3
    weak_e = [0.5, 0.0, 0.0, 0.5]  # tier E by a threshold of 0.5, expected level 1/2
    assert tiered_score(0, weak_e) > tiered_score(1, sure_s)
    assert tiered_score(1, [0.2, 0.8, 0, 0]) > tiered_score(1, sure_s)  # inside a tier: expected level


def test_over_recall_by_hand_and_from_the_confusion_matrix():
    gold = ["I", "I", "I", "I", "E", "C"]
    predicted = ["I", "S", "C", None, "E", "I"]
    assert irrelevant_levels(ESCI) == ["I"]
    assert over_recall(gold, predicted, ESCI, ["I"]) == pytest.approx(2 / 4)  # S and C shown; None shows nothing
    assert over_recall(gold, predicted, ESCI, ["C", "I"]) == pytest.approx(1 / 5)  # only the S; C is hidden too
    m = compute_metrics(gold, predicted, ESCI)
    for bad in (["I"], ["C", "I"]):
        assert over_recall_from_confusion(m.confusion, m.confusion_labels, ESCI, bad) == pytest.approx(
            over_recall(gold, predicted, ESCI, bad))
    assert over_recall(["E"], ["E"], ESCI, ["I"]) is None
    with pytest.raises(ValueError, match="not levels"):
        irrelevant_levels(ESCI, ["X"])
    with pytest.raises(ValueError, match="nothing would be shown"):
        irrelevant_levels(ESCI, ESCI.keys)


def test_tradeoff_curve_runs_from_showing_all_to_showing_the_surest():
    probs = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.1, 0.2], [0.2, 0.1, 0.1, 0.6], [0.05, 0.05, 0.1, 0.8]]
    gold = ["E", "S", "I", "I"]
    curve = tradeoff_curve(probs, gold, ESCI, ["I"])
    assert [p.threshold for p in curve] == pytest.approx([0.2, 0.4, 0.8, 0.9])
    first, last = curve[0], curve[-1]
    assert (first.recall, first.over_recall, first.precision) == (1.0, 1.0, 0.5)  # everything shown
    assert (last.recall, last.over_recall, last.precision) == (0.5, 0.0, 1.0)  # only p(shown) = 0.9
    assert all(a.recall >= b.recall and a.over_recall >= b.over_recall for a, b in zip(curve, curve[1:]))
    # the tiers' own operating point lies on the curve when they show exactly the pairs above a threshold
    cumpt = CumPT(ESCI.keys, [0.5, 0.6, 0.7])  # shown iff C_C = p(E, S, C) >= 0.7 (or an earlier level passes)
    tiers = [cumpt.tier(p) for p in probs]
    assert shown_precision_recall(gold, tiers, ESCI, ["I"]) == (1.0, 1.0)
    assert over_recall(gold, tiers, ESCI, ["I"]) == 0.0


def test_tier_margin_is_the_nearest_comparison_the_rule_made():
    p = [0.3, 0.3, 0.2, 0.2]  # C = 0.3, 0.6, 0.8
    assert tier_margin(p, [0.5, 0.5, 0.5]) == pytest.approx(0.1)  # C_S = 0.6 passes 0.5; C_E = 0.3 missed 0.5 by 0.2
    assert tier_margin(p, [0.35, 0.9, 0.9]) == pytest.approx(0.05)  # C_E missed by 0.05 decides the doubt
    assert tier_margin(p, [0.25, 0.9, 0.9]) == pytest.approx(0.05)  # tier E, passed by 0.05; later levels unchecked
    assert tier_margin(p, [NEVER, 0.55, 0.9]) == pytest.approx(0.05)  # a switched-off level cannot flip the tier
    assert tier_margin(p, [NEVER, NEVER, NEVER]) == 1.0


def _set(name, rows):
    return ScoreSet(name, ESCI, [ScoreRow(id=i, scheme="esci", probs=dict(zip(ESCI.keys, p)), label="E", score=0.5,
                                          gold="E") for i, p in rows.items()])


def test_tier_stability_counts_pairs_whose_tier_moves():
    cumpt = CumPT(ESCI.keys, [0.4, 0.6, 0.8])
    first = _set("a", {"1": [0.45, 0.4, 0.1, 0.05], "2": [0.3, 0.35, 0.2, 0.15], "3": [0.1, 0.1, 0.1, 0.7]})
    # pair 1: argmax E -> S, CumPT stays E (C_E still >= 0.4); pair 2: argmax S -> E, CumPT stays S; pair 3: same
    second = _set("b", {"1": [0.41, 0.44, 0.1, 0.05], "2": [0.36, 0.34, 0.2, 0.1], "3": [0.1, 0.1, 0.1, 0.7]})
    t = tier_stability(first, second, cumpt, ("a", "b"))
    assert (t.n, t.argmax_changed, t.cumpt_changed) == (3, 2, 0)
    assert t.argmax_share == pytest.approx(2 / 3) and t.cumpt_share == 0
    assert tier_stability(first, second, None).cumpt_changed is None
    from taosr1_plugins.errors import DataError

    with pytest.raises(DataError, match="same pairs"):
        tier_stability(first, _set("c", {"1": [0.25] * 4}), cumpt)
