"""One builder for a scored pair: `taosr1 score --cumpt` and `taosr1 serve` give one pair the same raw
probabilities, label, tier, score and margin, with a cumpt.json whose temperature calibration moves the
distribution (tiny model, real CLI, real server on loopback)."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from loopback import serve_in_thread
from taosr1_plugins import plugins
from taosr1_plugins.cli import app
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.calibration import load_cumpt
from taosr1_plugins.deploy.cumpt import CumPT, argmax_tier, expected_score
from taosr1_plugins.deploy.scored_pair import score_pair
from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records
from taosr1_plugins.deploy.temperature import Calibration

ESCI = get_scheme("esci")
TEMPERATURE = 0.3  # sharpens: the tiny random model's near-uniform distribution moves visibly
SHARED_FIELDS = ("probs", "label", "tier", "score", "margin")


@pytest.fixture(scope="module")
def setup(tiny_model_dir, esci_records, tmp_path_factory):
    """One pair, its raw distribution, and a cumpt.json whose first threshold lies between the raw and the
    calibrated C_1, so the tier read from the raw distribution differs from the calibrated one's."""
    folder = tmp_path_factory.mktemp("scored_pair")
    record = esci_records[0]
    scorer = plugins.get("deployment_adapter", "hf")(str(tiny_model_dir), ESCI, device="cpu", max_explain_tokens=4)
    raw = scorer.probabilities([record])[0]
    calibrated = Calibration(TEMPERATURE).apply(raw)
    assert max(abs(a - b) for a, b in zip(raw, calibrated)) > 1e-3, "the calibration must move the distribution"
    thresholds = {"E": (raw[0] + calibrated[0]) / 2, "S": 0.5, "C": 0.8}
    path = folder / "cumpt.json"
    path.write_text(json.dumps({  # as `taosr1 calibrate --calibration temperature` writes it (its required part)
        "scheme": "esci", "levels": ESCI.keys, "thresholds": thresholds,
        "calibration": {"method": "temperature", "temperature": TEMPERATURE},
    }))
    data = folder / "records.jsonl"
    write_jsonl(data, [record])
    return {"record": record, "scorer": scorer, "raw": raw, "calibrated": calibrated, "cumpt_path": path,
            "cumpt": load_cumpt(path).to_cumpt(), "data": data, "folder": folder}


def scored_by_cli(setup, model_dir) -> dict:
    out = setup["folder"] / "scores.jsonl"
    result = CliRunner().invoke(app, ["score", "--model", str(model_dir), "--data", str(setup["data"]), "--out",
                                      str(out), "--cumpt", str(setup["cumpt_path"]), "--device", "cpu",
                                      "--no-progress", "--overwrite"])
    assert result.exit_code == 0, result.output
    read_scores(out)  # still a valid score file for eval / calibrate / report
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    return row


def served(setup, model_dir) -> dict:
    from taosr1_plugins.deploy.serving.score_server import load_app

    record = setup["record"]
    pair = {"id": record.id, "query": record.query, "item": record.item.model_dump(exclude_none=True)}
    server_app = load_app(str(model_dir), cumpt_path=str(setup["cumpt_path"]), device="cpu")  # as `taosr1 serve`
    with serve_in_thread(server_app) as base:
        response = httpx.post(f"{base}/v1/score", json={"pairs": [pair]}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["calibrated"] is True
    (result,) = response.json()["results"]
    return result


def test_score_and_serve_give_one_pair_the_same_answer(setup, tiny_model_dir):
    row, result = scored_by_cli(setup, tiny_model_dir), served(setup, tiny_model_dir)
    raw, calibrated, cumpt = setup["raw"], setup["calibrated"], setup["cumpt"]

    assert set(result) == {"id", *SHARED_FIELDS} and set(SHARED_FIELDS) <= set(row)  # the same names
    assert result["probs"] == pytest.approx(row["probs"], abs=2e-6)
    assert (result["label"], result["tier"]) == (row["label"], row["tier"])
    assert result["score"] == pytest.approx(row["score"], abs=2e-6)
    assert result["margin"] == pytest.approx(row["margin"], abs=2e-6)

    # which distribution each field is read from: probs and label raw, tier and score calibrated
    assert [row["probs"][k] for k in ESCI.keys] == pytest.approx(raw, abs=1e-5)
    assert [row["probs"][k] for k in ESCI.keys] != pytest.approx(calibrated, abs=1e-4)
    assert row["label"] == ESCI.keys[argmax_tier(raw)]
    assert row["tier"] == cumpt.tier(raw) != CumPT(cumpt.levels, cumpt.thresholds).tier(raw)  # not the raw tier
    assert row["score"] == pytest.approx(expected_score(calibrated), abs=1e-5)
    assert row["score"] != pytest.approx(expected_score(raw), abs=1e-4)
    assert row["margin"] == pytest.approx(cumpt.margin(raw), abs=1e-5)


class CountingCalibration(Calibration):
    """The real transform, counting how often it runs."""

    calls = 0

    def apply(self, probs):
        CountingCalibration.calls += 1
        return super().apply(probs)


def test_each_pair_is_calibrated_once(setup, tmp_path):
    # explain "auto" reads the margin and the explained label is the tier: all from the one calibration
    cumpt = CumPT(ESCI.keys, setup["cumpt"].thresholds, CountingCalibration(TEMPERATURE))
    CountingCalibration.calls = 0
    pair = score_pair(setup["raw"], ESCI, cumpt)
    assert CountingCalibration.calls == 1 and pair.tier == setup["cumpt"].tier(setup["raw"])

    CountingCalibration.calls = 0
    settings = ScoreSettings(explain="auto", explain_margin=1.0, cumpt=cumpt, progress=False)
    score_records(setup["scorer"], [setup["record"]], tmp_path / "s.jsonl", settings)
    assert CountingCalibration.calls == 1

    from taosr1_plugins.deploy.serving.score_server import create_app

    CountingCalibration.calls = 0
    record = setup["record"]
    body = {"pairs": [{"query": record.query, "item": record.item.model_dump(exclude_none=True)}]}
    with serve_in_thread(create_app(setup["scorer"], cumpt=cumpt, explain="auto", explain_margin=1.0)) as base:
        response = httpx.post(f"{base}/v1/score", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["results"][0]["explanation"], str)
    assert CountingCalibration.calls == 1


def test_a_pair_on_a_threshold_gets_the_tier_the_fit_counted(tmp_path):
    """`calibrate` fits the thresholds on the probabilities a score file stores (6 decimals), so they sit on
    stored cumulative values; scoring the exact probabilities of such a pair (a hair below the stored ones,
    the same once rounded) must give the tier the fit counted for it, at fit and at serve time alike."""
    import random

    from taosr1_plugins.deploy.calibration import fit_cumpt
    from taosr1_plugins.deploy.cumpt import cumulative

    rng = random.Random(0)
    stored, exact, rows = [], [], []
    for i in range(40):
        weights = [rng.random() + (1.5 if k == i % 4 else 0.0) for k in range(4)]
        probs = [round(w / sum(weights), 6) for w in weights]
        stored.append(probs)
        exact.append([probs[0] - 4e-7, probs[1], probs[2], probs[3] + 4e-7])  # rounds back to ``probs``
        rows.append({"id": f"p{i}", "scheme": "esci", **score_pair(probs, ESCI).fields(), "gold": ESCI.keys[i % 4]})
    scores = tmp_path / "dev.jsonl"
    write_jsonl(scores, rows)
    fitted = fit_cumpt(scores)
    cumpt = CumPT(ESCI.keys, [fitted["thresholds"][key] for key in ESCI.keys[:-1]])
    # the case this is about: a threshold lies on a stored value, and the exact values fall just below it
    assert any(cumpt.tier(s) != cumpt.tier(e) for s, e in zip(stored, exact)), "no pair lies on a threshold"
    assert any(c in cumpt.thresholds for s in stored for c in cumulative(s)[:-1])
    for s, e in zip(stored, exact):
        assert score_pair(e, ESCI, cumpt).tier == cumpt.tier(s)  # what the fit counted for this pair
