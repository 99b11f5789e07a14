"""Bootstrap intervals by query (evaluation/intervals.py): the numpy metrics equal scikit-learn's, intervals hold
the whole-split value, and paired differences tell a gain from noise."""

from __future__ import annotations

import numpy as np
import pytest

from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.data.importing import import_records
from taosr1_plugins.evaluation.intervals import bootstrap_by_query, confusion, macro_f1, qwk
from taosr1_plugins.evaluation.metrics import compute_metrics

CROWDFLOWER = get_scheme("crowdflower")


@pytest.fixture(scope="module")
def sample(shared_data):
    """600 Crowdflower pairs (several per query): their queries and gold levels, and a noisy model's predictions
    (a third of the pairs moved one level, a few unparseable)."""
    records = list(import_records("crowdflower", shared_data / "crowdflower" / "dev.csv.gz", limit=600))
    gold = np.array([CROWDFLOWER.keys.index(r.label) for r in records])
    rng = np.random.default_rng(3)
    noisy = gold.copy()
    moved = rng.random(len(gold)) < 0.33
    noisy[moved] = np.clip(gold[moved] + rng.choice([-1, 1], moved.sum()), 0, 3)
    noisy[rng.random(len(gold)) < 0.03] = -1
    return [r.query for r in records], gold, noisy


def test_numpy_metrics_equal_the_report_metrics(sample):
    _, gold, noisy = sample
    keys = [CROWDFLOWER.keys[g] for g in gold]
    for predicted in (noisy, gold, np.zeros_like(gold), np.full_like(gold, 3)):
        expected = compute_metrics(keys, [CROWDFLOWER.keys[p] if p >= 0 else None for p in predicted], CROWDFLOWER)
        counts = confusion(gold, predicted, 4)
        assert macro_f1(counts) == pytest.approx(expected.macro_f1)
        assert qwk(counts) == pytest.approx(expected.qwk)


def test_intervals_hold_the_value_and_differences_tell_a_gain_from_noise(sample):
    queries, gold, noisy = sample
    rows = {"noisy": noisy, "same": noisy.copy(), "perfect": gold}
    boot = bootstrap_by_query(queries, gold, rows, 4, [("noisy", "same"), ("noisy", "perfect"), ("perfect", "noisy")],
                              resamples=300)
    assert boot.queries == len(set(queries)) < len(gold)  # the draws are of queries, not pairs
    for name, metrics in boot.rows.items():
        for interval in metrics.values():
            assert interval.low <= interval.value <= interval.high
    assert boot.rows["noisy"]["macro_f1"].high - boot.rows["noisy"]["macro_f1"].low > 0.02
    same, gain, loss = boot.differences
    assert (same.metrics["macro_f1"].low, same.metrics["macro_f1"].high) == (0.0, 0.0) and same.verdict == "no difference"
    assert gain.verdict == "adds" and gain.metrics["macro_f1"].low > 0
    assert loss.verdict == "worse" and loss.metrics["qwk"].high < 0
    # the same seed, the same draws
    again = bootstrap_by_query(queries, gold, rows, 4, resamples=300)
    assert again.rows["noisy"]["macro_f1"] == boot.rows["noisy"]["macro_f1"]


def test_a_row_of_the_wrong_length_is_refused(sample):
    queries, gold, noisy = sample
    with pytest.raises(ValueError, match="row 'short'"):
        bootstrap_by_query(queries, gold, {"short": noisy[:-1]}, 4)
