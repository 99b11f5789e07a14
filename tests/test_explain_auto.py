"""`explain: auto`: only pairs whose CumPT tier is in doubt get their reasoning decoded, in `taosr1 score`
and in the server on loopback (tiny model); `never` and `always` stay as they were."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from loopback import serve_in_thread
from taosr1_plugins.deploy.calibration import load_cumpt
from taosr1_plugins.deploy.cumpt import argmax_tier, expected_score
from taosr1_plugins.cli import app
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins import plugins
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import ExplainPolicy, ScoreSettings, read_scores, score_records

ESCI = get_scheme("esci")
MAX_EXPLAIN_TOKENS = 3


@pytest.fixture(scope="module")
def setup(tiny_model_dir, esci_records, tmp_path_factory):
    """Pairs, a cumpt.json with a calibration, and an explain margin that splits the pairs in two."""
    folder = tmp_path_factory.mktemp("explain")
    records = esci_records[:8]
    scorer = plugins.get("deployment_adapter", "hf")(str(tiny_model_dir), ESCI, device="cpu", max_explain_tokens=MAX_EXPLAIN_TOKENS)
    probs = scorer.probabilities(records)
    # thresholds at the pairs' median cumulative probabilities, so margins differ from pair to pair
    cum = sorted(sum(p[:1]) for p in probs), sorted(sum(p[:2]) for p in probs), sorted(sum(p[:3]) for p in probs)
    thresholds = {key: values[len(values) // 2] for key, values in zip(ESCI.keys, cum)}
    path = folder / "cumpt.json"
    path.write_text(json.dumps({"scheme": "esci", "levels": ESCI.keys, "thresholds": thresholds,
                                "calibration": {"method": "temperature", "temperature": 1.7}}))
    cumpt = load_cumpt(path).to_cumpt()
    margins = sorted(cumpt.margin(p) for p in probs)
    assert margins[0] < margins[-1], "the tiny model gave every pair the same margin; the test needs a spread"
    margin = (margins[3] + margins[4]) / 2  # about half the pairs below it
    return {"records": records, "scorer": scorer, "probs": probs, "cumpt_path": path, "cumpt": cumpt, "margin": margin}


def test_score_explains_only_pairs_in_doubt(setup, tmp_path):
    cumpt, margin = setup["cumpt"], setup["margin"]
    settings = ScoreSettings(explain="auto", explain_margin=margin, cumpt=cumpt, batch_size=4, progress=False)
    rows = read_scores(score_records(setup["scorer"], setup["records"], tmp_path / "s.jsonl", settings)).rows
    wanted = [cumpt.margin(p) < margin for p in setup["probs"]]
    assert [row.explanation is not None for row in rows] == wanted and 0 < sum(wanted) < len(rows)
    for row, p in zip(rows, setup["probs"]):
        assert row.tier == cumpt.tier(p) and row.margin == pytest.approx(cumpt.margin(p), abs=1e-6)
        assert row.probs == pytest.approx(dict(zip(ESCI.keys, p)), abs=1e-6)  # the model's own, not calibrated

    with pytest.raises(ValueError, match="give a cumpt.json"):
        ExplainPolicy("auto", 0.1, None)
    data = tmp_path / "records.jsonl"
    write_jsonl(data, setup["records"][:1])
    refused = CliRunner().invoke(app, ["score", "--model", "unused", "--data", str(data), "--out",
                                       str(tmp_path / "o.jsonl"), "--explain-mode", "auto"])
    assert refused.exit_code == 2 and "cumpt" in refused.output  # before any model is loaded


@pytest.fixture(scope="module")
def server(setup):
    # uvicorn on loopback in a thread over the already loaded model: a subprocess would spend its time
    # importing torch again (test_serve.py covers the server as its own process)
    from taosr1_plugins.deploy.serving.score_server import create_app

    app = create_app(setup["scorer"], cumpt=setup["cumpt"], explain="auto", explain_margin=setup["margin"])
    with serve_in_thread(app) as base:
        yield base


def test_serve_refuses_auto_without_thresholds_before_loading_a_model():
    result = CliRunner().invoke(app, ["serve", "--model", "unused", "--explain-mode", "auto"])
    assert result.exit_code == 2 and "cumpt" in result.output


def pairs_of(records):
    return [{"id": r.id, "query": r.query, "item": r.item.model_dump(exclude_none=True)} for r in records]


def test_server_explains_in_doubt_pairs_and_requests_may_choose(server, setup):
    cumpt, margin = setup["cumpt"], setup["margin"]
    response = httpx.post(f"{server}/v1/score", json={"pairs": pairs_of(setup["records"])}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["explain"] == "auto" and body["calibrated"] is True
    explained = 0
    for result, p in zip(body["results"], setup["probs"]):
        assert result["margin"] == pytest.approx(cumpt.margin(p), abs=1e-4)
        assert result["tier"] == cumpt.tier(p)
        served = [result["probs"][k] for k in ESCI.keys]
        assert served == pytest.approx(p, abs=1e-4)  # the model's own; the tier and score are the calibrated one's
        assert result["score"] == pytest.approx(expected_score(cumpt.calibrated(p)), abs=1e-4)
        assert result["label"] == ESCI.keys[argmax_tier(p)]
        if cumpt.margin(p) < margin:
            assert isinstance(result["explanation"], str)
            explained += 1
        else:
            assert result["explanation"] is None
    assert 0 < explained < len(setup["probs"])
    assert httpx.get(f"{server}/healthz", timeout=10).json()["explained"] == explained

    always = httpx.post(f"{server}/v1/score", json={"pairs": pairs_of(setup["records"][:2]), "explain": "always"},
                        timeout=120).json()
    assert all(isinstance(r["explanation"], str) for r in always["results"])
    never = httpx.post(f"{server}/v1/score", json={"pairs": pairs_of(setup["records"][:2]), "explain": "never"},
                       timeout=60).json()
    assert all("explanation" not in r for r in never["results"])
    bad = httpx.post(f"{server}/v1/score", json={"pairs": pairs_of(setup["records"][:1]), "explain": "sometimes"},
                     timeout=30)
    assert bad.status_code == 422 and "explain" in bad.json()["error"]["message"]
