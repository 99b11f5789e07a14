"""Calibration before CumPT: the fit recovers a known distortion, cumpt.json carries it, and every reader
(tiers, report, old files) applies it or not exactly as the file says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from taosr1_plugins.deploy.calibration import load_cumpt
from taosr1_plugins.cli import app
from taosr1_plugins.deploy.cumpt import CumPT, argmax_tier, assign_tier, expected_score
from taosr1_plugins.errors import DataError
from taosr1_plugins.evaluation.metrics import compute_metrics
from taosr1_plugins.evaluation.reliability import ece_of
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.temperature import Calibration, fit_calibration, log_loss

ESCI = get_scheme("esci")


def synthetic(n, seed, sharpen=1.0, boost=None):
    """True distributions q, gold drawn from q, and what a distorted model reports: softmax(sharpen * log q + boost)."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet([0.6] * 4, size=n)
    gold = np.array([rng.choice(4, p=row) for row in q])
    z = sharpen * np.log(np.clip(q, 1e-9, 1)) + (np.asarray(boost) if boost is not None else 0.0)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p.tolist(), gold.tolist()


def test_temperature_of_an_over_confident_model_is_recovered_and_lowers_log_loss_and_ece():
    probs, gold = synthetic(3000, 0, sharpen=3.0)  # three times too sharp: the right temperature is 3
    fit = fit_calibration(probs, gold, "temperature")
    assert fit.calibration.temperature == pytest.approx(3.0, rel=0.15)
    calibrated = [fit.calibration.apply(p) for p in probs]
    assert fit.log_loss_after == pytest.approx(log_loss(calibrated, gold)) and fit.log_loss_after < fit.log_loss_before
    assert ece_of(calibrated, gold) < ece_of(probs, gold) / 2
    # temperature alone never changes the most probable level
    assert all(argmax_tier(p) == argmax_tier(c) for p, c in zip(probs, calibrated))


def test_a_calibrated_model_keeps_temperature_one():
    probs, gold = synthetic(3000, 1)
    assert fit_calibration(probs, gold).calibration.temperature == pytest.approx(1.0, abs=0.12)


def test_per_level_biases_undo_a_boosted_level():
    probs, gold = synthetic(4000, 2, boost=[1.5, 0, 0, 0])  # level E's logit pushed up by 1.5
    fit = fit_calibration(probs, gold, "temperature_bias")
    assert fit.calibration.biases[0] == pytest.approx(-1.5, abs=0.3)
    assert fit.calibration.biases[1:] == pytest.approx([0, 0, 0], abs=0.3)
    assert fit.log_loss_after < fit_calibration(probs, gold, "temperature").log_loss_after
    with pytest.raises(ValueError, match="unknown calibration"):
        fit_calibration(probs, gold, "platt")


def write_scores(path, probs, gold, queries=None):
    with open(path, "w") as fh:
        for i, (p, g) in enumerate(zip(probs, gold)):
            p = [round(x, 6) for x in p]
            row = {"id": f"r{i}", "scheme": "esci", "probs": dict(zip(ESCI.keys, p)), "label": ESCI.keys[argmax_tier(p)],
                   "score": min(1.0, expected_score(p)), "gold": ESCI.keys[g]}
            if queries:
                row["query"] = queries[i]
            fh.write(json.dumps(row) + "\n")
    return path


def test_calibrate_writes_the_transform_and_the_file_applies_it(tmp_path):
    probs, gold = synthetic(400, 3, sharpen=3.0)
    scores = write_scores(tmp_path / "dev.jsonl", probs, gold)
    out = tmp_path / "cumpt.json"
    result = CliRunner().invoke(app, ["calibrate", "--scores", str(scores), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    block = data["calibration"]
    assert block["method"] == "temperature" and block["temperature"] > 1.5
    assert block["log_loss"]["after"] < block["log_loss"]["before"] and block["ece"]["after"] < block["ece"]["before"]
    assert set(block["uncalibrated_thresholds"]) == {"E", "S", "C"}
    assert "ECE" in result.output and "log-loss" in result.output
    cumpt = load_cumpt(out).to_cumpt()
    thresholds = [data["thresholds"][k] for k in ESCI.keys[:-1]]
    transform = Calibration(block["temperature"])
    rounded = [[round(x, 6) for x in p] for p in probs]
    assert [cumpt.tier(p) for p in rounded] == [ESCI.keys[assign_tier(transform.apply(p), thresholds)] for p in rounded]
    # the file's macro-F1 figures are those of the two partitions on its dev split
    gold_keys = [ESCI.keys[g] for g in gold]
    raw = CumPT(ESCI.keys, [block["uncalibrated_thresholds"][k] for k in ESCI.keys[:-1]])
    assert block["uncalibrated_cumpt"]["macro_f1"] == pytest.approx(
        compute_metrics(gold_keys, [raw.tier(p) for p in rounded], ESCI).macro_f1)
    assert data["cumpt"]["macro_f1"] == pytest.approx(
        compute_metrics(gold_keys, [cumpt.tier(p) for p in rounded], ESCI).macro_f1)

    none = tmp_path / "none.json"
    assert CliRunner().invoke(app, ["calibrate", "--scores", str(scores), "--out", str(none),
                                    "--calibration", "none"]).exit_code == 0
    assert "calibration" not in json.loads(none.read_text())
    bad = CliRunner().invoke(app, ["calibrate", "--scores", str(scores), "--out", str(tmp_path / "x.json"),
                                   "--calibration", "platt"])
    assert bad.exit_code == 2 and "unknown calibration" in bad.output


def test_old_cumpt_files_mean_no_transform_and_bad_blocks_name_the_field(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"scheme": "esci", "levels": ESCI.keys, "thresholds": {"E": 0.3, "S": 0.5, "C": 0.8}}))
    cumpt = load_cumpt(old).to_cumpt()
    assert cumpt.calibration is None and load_cumpt(old).uncalibrated_cumpt() is None
    p = [0.25, 0.3, 0.2, 0.25]
    assert cumpt.tier(p) == "S" and cumpt.calibrated(p) == p
    for block, field in [({"method": "temperature", "temperature": 0}, "calibration.temperature"),
                         ({"method": "t", "temperature": 2, "biases": {"E": 1}}, "calibration"),
                         ({"temperature": 2}, "calibration.method")]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**json.loads(old.read_text()), "calibration": block}))
        with pytest.raises(DataError, match=field.replace(".", r"\.")):
            load_cumpt(bad)


def test_report_shows_ece_before_and_after_and_macro_f1_with_and_without(tmp_path):
    from test_report import parse

    dev_probs, dev_gold = synthetic(400, 4, sharpen=3.0)
    test_probs, test_gold = synthetic(300, 5, sharpen=3.0)
    dev = write_scores(tmp_path / "dev.jsonl", dev_probs, dev_gold)
    queries = [f"q{i % 30}" for i in range(300)]
    test = write_scores(tmp_path / "test.jsonl", test_probs, test_gold, queries)
    cumpt = tmp_path / "cumpt.json"
    assert CliRunner().invoke(app, ["calibrate", "--scores", str(dev), "--out", str(cumpt)]).exit_code == 0
    report = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["eval", "--scores", str(test), "--cumpt", str(cumpt), "--report", str(report)])
    assert result.exit_code == 0, result.output
    html = parse(report)
    assert {"reliability", "reliability_calibrated", "tradeoff"} <= set(html.plots)
    rows = next(t for t in html.tables if t["class"] == "headline")["rows"]
    header, row = rows[0], dict(zip(rows[0], rows[1]))
    assert {"NDCG@10", "NDCG", "over-recall", "ECE", "ECE calibrated", "macro-F1 CumPT uncalibrated"} <= set(header)
    assert float(row["ECE calibrated"]) < float(row["ECE"])
    file = load_cumpt(cumpt)
    gold = [ESCI.keys[g] for g in test_gold]
    rounded = [[round(x, 6) for x in p] for p in test_probs]
    uncalibrated = compute_metrics(gold, [file.uncalibrated_cumpt().tier(p) for p in rounded], ESCI).macro_f1
    assert float(row["macro-F1 CumPT uncalibrated"]) == pytest.approx(uncalibrated, abs=5e-4)
    from taosr1_plugins.evaluation.ranking import ranking_metrics, tiered_score

    partition = file.to_cumpt()
    ranking = ranking_metrics(queries, test_gold, [tiered_score(partition.tier_index(p), partition.calibrated(p))
                                                   for p in rounded], 4)
    assert float(row["NDCG@10"]) == pytest.approx(ranking.ndcg_at_10, abs=5e-4)
    assert float(row["NDCG"]) == pytest.approx(ranking.ndcg, abs=5e-4)


def test_eval_joins_queries_from_records_for_score_files_without_them(tmp_path):
    probs, gold = synthetic(120, 6)
    queries = [f"q{i % 10}" for i in range(120)]
    with_queries = write_scores(tmp_path / "with.jsonl", probs, gold, queries)
    without = write_scores(tmp_path / "without.jsonl", probs, gold)
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps({"id": f"r{i}", "query": q, "item": {"title": "t"}, "scheme": "esci"}) + "\n"
                               for i, q in enumerate(queries)))
    outputs = {}
    for name, args in [("with", ["--scores", str(with_queries)]), ("plain", ["--scores", str(without)]),
                       ("joined", ["--scores", str(without), "--data", str(records)])]:
        result = CliRunner().invoke(app, ["eval", *args, "--report", str(tmp_path / f"{name}.html")])
        assert result.exit_code == 0, result.output
        outputs[name] = next(line for line in result.output.splitlines() if "NDCG@10" in line)
    assert "NDCG@10 -" in outputs["plain"] and "NDCG@10 -" not in outputs["with"]
    assert outputs["joined"].split(":", 1)[1] == outputs["with"].split(":", 1)[1]
