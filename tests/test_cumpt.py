"""CumPT tiers and threshold calibration on crafted probabilities (hand-checkable) and random ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from taosr1_plugins.deploy.calibration import fit_cumpt, load_cumpt
from taosr1_plugins.cli import app
from taosr1_plugins.deploy.cumpt import (
    NEVER,
    CumPT,
    argmax_tier,
    assign_tier,
    cumulative,
    expected_score,
    fit_thresholds,
    parse_precision_targets,
)
from taosr1_plugins.errors import DataError
from taosr1_plugins.evaluation.metrics import compute_metrics
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import read_scores

TAOSR1 = get_scheme("taosr1")  # levels 4, 3, 2, 1


def test_tiers_by_hand():
    p = [0.3, 0.3, 0.2, 0.2]  # C4 = 0.3, C3 = 0.6, C2 = 0.8
    assert cumulative(p) == pytest.approx([0.3, 0.6, 0.8, 1.0])
    assert assign_tier(p, [0.5, 0.5, 0.5]) == 1  # C3 is the first to reach 0.5
    assert assign_tier(p, [0.25, 0.5, 0.5]) == 0  # C4 = 0.3 >= 0.25
    assert assign_tier(p, [0.9, 0.7, 0.8]) == 2  # only C2 = 0.8 reaches its threshold
    assert assign_tier(p, [0.9, 0.9, 0.9]) == 3  # nothing reaches: the lowest level
    assert assign_tier(p, [NEVER, NEVER, NEVER]) == 3
    # argmax picks differently: 4 and 3 tie at 0.3, ties go to the more relevant level
    assert argmax_tier(p) == 0
    assert CumPT(TAOSR1.keys, [0.5, 0.5, 0.5]).tier(p) == "3"
    assert expected_score([1, 0, 0, 0]) == 1 and expected_score([0, 0, 0, 1]) == 0
    assert expected_score(p) == pytest.approx((0.3 * 3 + 0.3 * 2 + 0.2 * 1) / 3)
    with pytest.raises(ValueError, match="need 3 thresholds"):
        assign_tier(p, [0.5])


def normalised(min_size, max_size):
    return st.lists(st.floats(0.001, 1.0), min_size=min_size, max_size=max_size).map(lambda w: [x / sum(w) for x in w])


probabilities = normalised(2, 6)


@settings(max_examples=200, deadline=None)
@given(probabilities, st.data())
def test_moving_mass_up_never_lowers_tier_or_score(p, data):
    """Shifting probability from a less relevant level to a more relevant one only raises C_k."""
    n = len(p)
    thresholds = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n - 1, max_size=n - 1))
    high = data.draw(st.integers(0, n - 2))
    low = data.draw(st.integers(high + 1, n - 1))
    moved = p[low] * data.draw(st.floats(0, 1))
    q = list(p)
    q[low] -= moved
    q[high] += moved
    assert assign_tier(q, thresholds) <= assign_tier(p, thresholds)
    assert expected_score(q) >= expected_score(p) - 1e-12


@settings(max_examples=200, deadline=None)
@given(probabilities, st.lists(st.floats(0.0, 1.0), min_size=5, max_size=5))
def test_lower_thresholds_never_lower_the_tier(p, values):
    thresholds = values[: len(p) - 1]
    lowered = [t * 0.5 for t in thresholds]
    assert assign_tier(p, lowered) <= assign_tier(p, thresholds)


def biased_dev_set():
    """A model that over-predicts the lowest level: argmax rarely says 4 although gold often is 4.

    Gold-4 pairs put 0.40 on level 4 but 0.45 on level 1, so argmax calls them 1; their C4 = 0.40 is
    still far above the other pairs' C4, and a threshold t4 around 0.4 recovers them.
    """
    probs, gold = [], []
    for _ in range(10):
        probs.append([0.40, 0.10, 0.05, 0.45]), gold.append(0)
    for _ in range(10):
        probs.append([0.10, 0.55, 0.05, 0.30]), gold.append(1)
    for _ in range(10):
        probs.append([0.05, 0.15, 0.50, 0.30]), gold.append(2)
    for _ in range(10):
        probs.append([0.05, 0.05, 0.10, 0.80]), gold.append(3)
    return probs, gold


def test_fit_recovers_a_biased_level_and_beats_argmax():
    probs, gold = biased_dev_set()
    fit = fit_thresholds(probs, gold)
    tiers = [assign_tier(p, fit.thresholds) for p in probs]
    assert tiers == gold  # all four levels recovered
    assert fit.value == pytest.approx(1.0)
    argmax = compute_metrics([str(g) for g in gold], [str(argmax_tier(p)) for p in probs], _index_scheme())
    assert argmax.macro_f1 < 0.8  # gold-4 pairs go to level 1 under argmax


def _index_scheme():
    from taosr1_plugins.core.schemes import LabelScheme, Level

    return LabelScheme(name="idx", levels=tuple(Level(key=str(i), name=f"L{i}", definition="d") for i in range(4)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(normalised(3, 3), st.integers(0, 2)), min_size=3, max_size=40))
def test_fit_is_never_below_the_median_rule_and_its_value_matches_sklearn(rows):
    probs, gold = [list(r[0]) for r in rows], [r[1] for r in rows]
    fit = fit_thresholds(probs, gold)
    scheme = _index_scheme_of(3)
    keys = scheme.keys
    fitted = compute_metrics([keys[g] for g in gold], [keys[assign_tier(p, fit.thresholds)] for p in probs], scheme)
    median = compute_metrics([keys[g] for g in gold], [keys[assign_tier(p, [0.5, 0.5])] for p in probs], scheme)
    assert fit.value == pytest.approx(fitted.macro_f1)  # the search's own F1 is sklearn's
    assert fitted.macro_f1 >= median.macro_f1 - 1e-12


def _index_scheme_of(n):
    from taosr1_plugins.core.schemes import LabelScheme, Level

    return LabelScheme(name=f"idx{n}", levels=tuple(Level(key=str(i), name=f"L{i}", definition="d") for i in range(n)))


def test_precision_objective_meets_a_reachable_target():
    probs, gold = biased_dev_set()
    # Make level 4 harder: a few gold-3 pairs look like gold-4 ones.
    probs += [[0.38, 0.12, 0.05, 0.45]] * 3
    gold += [1] * 3
    fit = fit_thresholds(probs, gold, objective="precision", precision_targets={0: 1.0})
    predicted_4 = [g for p, g in zip(probs, gold) if assign_tier(p, fit.thresholds) == 0]
    assert predicted_4 and all(g == 0 for g in predicted_4)  # precision 1.0 on level 4
    assert fit.targets_met == {"0": True}
    with pytest.raises(ValueError, match="needs per-level precision targets"):
        fit_thresholds(probs, gold, objective="precision")


def test_parse_precision_targets():
    assert parse_precision_targets("4=0.9, 3=0.7", TAOSR1.keys) == {"4": 0.9, "3": 0.7}
    for bad, message in (("5=0.9", "LEVEL one of"), ("4=x", "not a number"), ("4=1.5", r"\(0, 1\]"), ("", "no precision")):
        with pytest.raises(ValueError, match=message):
            parse_precision_targets(bad, TAOSR1.keys)


def write_scores(path, probs, gold, scheme=TAOSR1):
    with open(path, "w") as fh:
        for i, (p, g) in enumerate(zip(probs, gold)):
            row = {"id": f"r{i}", "scheme": scheme.name, "probs": dict(zip(scheme.keys, p)),
                   "label": scheme.keys[argmax_tier(p)], "score": expected_score(p), "gold": scheme.keys[g]}
            fh.write(json.dumps(row) + "\n")
    return path


def test_calibrate_command_records_split_objective_value_and_argmax(tmp_path):
    probs, gold = biased_dev_set()
    scores = write_scores(tmp_path / "dev_scores.jsonl", probs, gold)
    out = tmp_path / "cumpt.json"
    result = CliRunner().invoke(app, ["calibrate", "--scores", str(scores), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["scheme"] == "taosr1" and data["levels"] == ["4", "3", "2", "1"]
    assert set(data["thresholds"]) == {"4", "3", "2"}
    assert data["objective"] == "macro_f1"
    assert data["split"]["name"] == "dev" and data["split"]["n"] == 40 and len(data["split"]["sha256"]) == 64
    assert data["value"] == pytest.approx(1.0) == data["cumpt"]["macro_f1"]
    assert data["argmax"]["macro_f1"] < data["cumpt"]["macro_f1"]
    assert data["macro_f1_gain_over_argmax"] > 0
    assert load_cumpt(out).to_cumpt().tier([0.4, 0.1, 0.05, 0.45]) == "4"

    targets = CliRunner().invoke(app, ["calibrate", "--scores", str(scores), "--out", str(tmp_path / "p.json"),
                                       "--objective", "precision", "--precision-targets", "4=0.95"])
    assert targets.exit_code == 0, targets.output
    assert json.loads((tmp_path / "p.json").read_text())["targets_met"] == {"4": True}


def test_calibration_never_worse_than_argmax_on_crafted_dev_sets():
    """On sets shaped like real relevance scores (peaked on the gold level, or biased toward one)."""
    import random

    rng = random.Random(0)
    for _ in range(20):
        probs, gold = [], []
        bias = rng.randrange(4)
        for _ in range(60):
            g = rng.randrange(4)
            w = [rng.random() * 0.5 for _ in range(4)]
            w[g] += rng.random()
            w[bias] += rng.random() * 0.8
            probs.append([x / sum(w) for x in w])
            gold.append(g)
        fit = fit_thresholds(probs, gold)
        argmax = compute_metrics([str(g) for g in gold], [str(argmax_tier(p)) for p in probs], _index_scheme())
        assert fit.value >= argmax.macro_f1 - 1e-12


def test_bad_score_files_name_file_line_and_field(tmp_path):
    path = tmp_path / "scores.jsonl"
    good = {"id": "a", "scheme": "taosr1", "probs": {"4": 0.1, "3": 0.2, "2": 0.3, "1": 0.4}, "label": "1",
            "score": 0.3, "gold": "1"}
    cases = [
        ({**good, "probs": {"4": 0.5, "3": 0.5}}, "probs"),
        ({**good, "probs": {"4": 0.5, "3": 0.5, "2": 0.5, "1": 0.5}}, "sum to 1"),
        ({**good, "gold": "9"}, "gold"),
        ({k: v for k, v in good.items() if k != "probs"}, "probs"),
    ]
    for bad, field in cases:
        path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError, match=field) as info:
            read_scores(path)
        assert info.value.line == 2 and str(path) in str(info.value)
    path.write_text(json.dumps({**good, "gold": None}) + "\n")
    with pytest.raises(DataError, match="no gold label"):
        fit_cumpt(path)
