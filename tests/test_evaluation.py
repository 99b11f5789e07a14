"""Metrics: invalid predictions count as errors, per-level numbers, QWK ordering."""

import pytest

from taosr1_plugins.builtin.schemes import TAOSR1
from taosr1_plugins.evaluation.metrics import INVALID, compute_metrics


def test_perfect_predictions():
    gold = ["4", "3", "2", "1", "4"]
    m = compute_metrics(gold, gold, TAOSR1)
    assert m.macro_f1 == pytest.approx(1.0) and m.accuracy == 1.0 and m.qwk == pytest.approx(1.0)


def test_invalid_predictions_are_errors_not_a_level():
    gold = ["4", "4", "1", "1"]
    m = compute_metrics(gold, ["4", None, "1", "garbage"], TAOSR1, format_ok=[True, False, True, False])
    assert m.accuracy == 0.5 and m.invalid_rate == 0.5 and m.format_ok_rate == 0.5
    # each level: precision 1, recall 1/2 -> F1 2/3; the invalid pseudo-label is not averaged in
    assert m.macro_f1 == pytest.approx(2 / 3)
    assert m.confusion_labels[-1] == INVALID and sum(map(sum, m.confusion)) == 4


def test_qwk_punishes_far_misses_more():
    gold = ["4", "4", "1", "1", "3", "2"]
    near = compute_metrics(gold, ["3", "4", "2", "1", "3", "2"], TAOSR1)
    far = compute_metrics(gold, ["1", "4", "4", "1", "3", "2"], TAOSR1)
    assert near.accuracy == far.accuracy
    assert near.qwk > far.qwk


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        compute_metrics(["4"], [], TAOSR1)
