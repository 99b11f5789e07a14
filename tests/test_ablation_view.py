"""`taosr1 report` on a hand-built run directory: NDCG, over-recall, ECE before/after and tier stability
in every row it can compute them for, from the files the stages and baselines write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taosr1_plugins.evaluation.ablation import ablation_markdown, write_ablation
from taosr1_plugins.deploy.calibration import fit_cumpt, load_cumpt, write_cumpt
from taosr1_plugins.deploy.cumpt import argmax_tier
from taosr1_plugins.evaluation.metrics import compute_metrics
from taosr1_plugins.evaluation.over_recall import over_recall
from taosr1_plugins.pipeline.stages import TRAINED_MODELS
from taosr1_plugins.evaluation.ranking import ranking_metrics
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import read_scores
from taosr1_plugins.evaluation.stability import tier_stability
from test_temperature import synthetic, write_scores

ESCI = get_scheme("esci")
N = 120


def build_run(tmp_path):
    run = tmp_path / "run"
    for sub in ("data", "deploy", "baselines/bm25", "baselines/majority"):
        (run / sub).mkdir(parents=True)
    queries = [f"query {i % 12}" for i in range(N)]
    probs_sft, gold = synthetic(N, 10, sharpen=2.0)
    rng = np.random.default_rng(11)
    # the GRPO model: the SFT distribution nudged, so some tiers move
    noisy = np.asarray(probs_sft) * np.exp(rng.normal(0, 0.4, size=(N, 4)))
    probs_grpo = (noisy / noisy.sum(axis=1, keepdims=True)).tolist()
    with open(run / "data" / "test.jsonl", "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"id": f"r{i}", "query": queries[i], "item": {"title": f"item {i}"},
                                 "label": ESCI.keys[gold[i]], "scheme": "esci"}) + "\n")
    # score files from before rows kept their query: the report joins the test split's queries by id
    write_scores(run / "deploy" / "test_scores_sft.jsonl", probs_sft, gold)
    write_scores(run / "deploy" / "test_scores_grpo.jsonl", probs_grpo, gold)
    dev_probs, dev_gold = synthetic(300, 12, sharpen=2.0)
    dev = write_scores(tmp_path / "dev.jsonl", dev_probs, dev_gold)
    write_cumpt(fit_cumpt(dev, calibration="temperature"), run / "deploy" / "cumpt.json")
    gold_keys = [ESCI.keys[g] for g in gold]
    bm25 = [float(x) for x in rng.random(N)]
    bm25_pred = ["E" if s > 0.5 else "I" for s in bm25]
    for name, label, predicted, scores in [("bm25", "lexical: BM25", bm25_pred, bm25),
                                           ("majority", "majority class", ["E"] * N, None)]:
        metrics = compute_metrics(gold_keys, predicted, ESCI)
        (run / "baselines" / name / "result.json").write_text(json.dumps(
            {"baseline": name, "label": label, "seconds": 1.0, "details": {"train_pairs": 10}, "metrics": metrics.to_dict()}))
        with open(run / "baselines" / name / "predictions.jsonl", "w") as fh:
            for i in range(N):  # the majority baseline's file is an old one, without scores
                row = {"id": f"r{i}", "gold": gold_keys[i], "predicted": predicted[i]}
                fh.write(json.dumps(row | ({"score": scores[i]} if scores else {})) + "\n")
    (run / "manifest.json").write_text(json.dumps({
        "config": {"deploy": {"irrelevant": []}},
        "stages": {"sft": {"seconds": 5}, "grpo": {"seconds": 7},
                   "deploy": {"status": "done", "seconds": 2, "outputs": {"model": "grpo"}}},
    }))
    return run, queries, gold, gold_keys, bm25, bm25_pred


def test_every_row_gets_the_serving_columns_and_stages_get_tier_stability(tmp_path):
    run, queries, gold, gold_keys, bm25, bm25_pred = build_run(tmp_path)
    ablation, paths = write_ablation(run, TRAINED_MODELS)
    table = json.loads(paths["json"].read_text())
    rows = {row["name"]: row for row in table["rows"]}
    assert list(rows) == ["majority class", "lexical: BM25", "SFT-CoT", "+GRPO", "+CumPT"]
    assert table["irrelevant"] == ["I"]

    # baselines: ranked by their own score; an old predictions file has no ranking but still an over-recall
    expected = ranking_metrics(queries, gold, bm25, 4)
    assert rows["lexical: BM25"]["ranking"]["ndcg_at_10"] == pytest.approx(expected.ndcg_at_10)
    assert rows["lexical: BM25"]["over_recall"] == pytest.approx(over_recall(gold_keys, bm25_pred, ESCI, ["I"]))
    assert rows["majority class"]["ranking"] is None and rows["majority class"]["over_recall"] == 1.0

    # stages: ECE of their own distribution; the calibrated ECE only where the calibration belongs
    sft = read_scores(run / "deploy" / "test_scores_sft.jsonl")
    grpo = read_scores(run / "deploy" / "test_scores_grpo.jsonl")
    assert rows["SFT-CoT"]["ece"] is not None and rows["SFT-CoT"]["ece_calibrated"] is None
    assert rows["+CumPT"]["ece_calibrated"] < rows["+CumPT"]["ece"] == rows["+GRPO"]["ece"]
    cumpt = load_cumpt(run / "deploy" / "cumpt.json")
    # macro-F1 with and without calibration: the thresholds fitted on the raw distribution, on the same pairs
    raw_tiers = [cumpt.uncalibrated_cumpt().tier(p) for p in grpo.ordered_probs()]
    assert rows["+CumPT"]["macro_f1_uncalibrated"] == pytest.approx(compute_metrics(gold_keys, raw_tiers, ESCI).macro_f1)
    assert rows["+GRPO"]["macro_f1_uncalibrated"] is None
    tiers = [cumpt.to_cumpt().tier(p) for p in grpo.ordered_probs()]
    assert rows["+CumPT"]["over_recall"] == pytest.approx(over_recall(gold_keys, tiers, ESCI, ["I"]))
    assert rows["+GRPO"]["over_recall"] == pytest.approx(
        over_recall(gold_keys, [ESCI.keys[argmax_tier(p)] for p in grpo.ordered_probs()], ESCI, ["I"]))
    for name in ("SFT-CoT", "+GRPO", "+CumPT"):
        assert rows[name]["ranking"]["queries"] > 0 and 0 < rows[name]["ranking"]["ndcg"] <= 1

    stability = table["stability"]
    direct = tier_stability(sft, grpo, cumpt.to_cumpt())
    assert len(stability) == 1 and stability[0]["first"] == "SFT-CoT" and stability[0]["second"] == "+GRPO"
    assert (stability[0]["argmax_changed"], stability[0]["cumpt_changed"]) == (direct.argmax_changed, direct.cumpt_changed)
    assert direct.argmax_changed > 0  # the nudged model really moves some pairs

    # the one report (report.html) and the Markdown `taosr1 report` prints carry the same columns; there is no
    # ablation.md or ablation.png beside the page any more (issue 31 item 8: one report)
    assert set(paths) == {"html", "json"} and sorted(p.name for p in paths["html"].parent.iterdir()) == ["ablation.json", "report.html"]
    markdown, page = ablation_markdown(ablation), paths["html"].read_text()
    for column in ("NDCG@10", "over-recall", "ECE calibrated", "macro-F1 uncalibrated", "tier changed (CumPT)",
                   "macro-F1 [95% CI]", "Δ macro-F1 [95% CI]"):
        assert column in markdown and f"<th>{column}</th>" in page

    # every row with its interval, drawn by the 12 test queries; each stage against the one before it
    intervals = table["intervals"]
    assert intervals["queries"] == 12 and set(intervals["rows"]) == set(rows)
    for name, row in rows.items():
        value, low, high = intervals["rows"][name]["macro_f1"]
        assert value == pytest.approx(row["metrics"]["macro_f1"], abs=1e-4) and low <= value <= high
    changes = [(d["first"], d["second"]) for d in intervals["differences"]]
    assert changes == [("SFT-CoT", "+GRPO"), ("+GRPO", "+CumPT")]  # no direct-answer or MiniLM row in this run
    grpo_vs_sft = intervals["differences"][0]
    assert grpo_vs_sft["macro_f1"][0] == pytest.approx(rows["+GRPO"]["metrics"]["macro_f1"] - rows["SFT-CoT"]["metrics"]["macro_f1"], abs=1e-4)

    # a configurable irrelevant set: C and I hidden
    wider, _ = write_ablation(run, TRAINED_MODELS, tmp_path / "wider", ["C", "I"])
    assert wider.irrelevant == ["C", "I"]
    row = next(r for r in wider.rows if r.name == "+GRPO")
    assert row.over_recall == pytest.approx(
        over_recall(gold_keys, [ESCI.keys[argmax_tier(p)] for p in grpo.ordered_probs()], ESCI, ["C", "I"]))


def build_report_run(tmp_path):
    """build_run, and what the one report shows beyond the table: a +DPO model that decides exactly as SFT-CoT,
    rule-derived tags, the eval stage's responses, GRPO's per-step logs, and a manifest with versions, the machine,
    and absolute paths (a command line, a failed stage's error) the page must not show."""
    run, *rest = build_run(tmp_path)
    deploy = run / "deploy"
    for name in ("test_scores_sft.jsonl", "test_scores_grpo.jsonl"):
        rows = [json.loads(line) for line in (deploy / name).read_text().splitlines()]
        for i, row in enumerate(rows):
            row["tags"] = ["negation"] if i % 4 == 0 else (["qa"] if i % 4 == 1 else [])
        (deploy / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    (deploy / "test_scores_dpo.jsonl").write_text((deploy / "test_scores_sft.jsonl").read_text())
    (run / "eval").mkdir()
    with open(run / "eval" / "predictions_grpo.jsonl", "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"id": f"r{i}", "response": f"<answer>E</answer>\n<think>because of reason {i}</think>"}) + "\n")
    (run / "grpo").mkdir()
    with open(run / "grpo" / "metrics.jsonl", "w") as fh:
        for step in range(1, 6):
            fh.write(json.dumps({"step": step, "reward": 0.4 + step / 20, "accuracy/all": 0.5, "kl": step / 100,
                                 "frac_reward_zero_std": 0.1}) + "\n")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"].update(model={"base": "smollm2"}, format="answer_first",
                              data={"input": str(tmp_path / "data" / "pairs.csv")})
    manifest["stages"]["dpo"] = {"status": "done", "seconds": 3}
    manifest["stages"]["eval"] = {"status": "failed", "error": f"DataError: {run / 'grpo' / 'model'}: no tokenizer files"}
    manifest.update(seed=0, argv=[str(tmp_path / ".venv" / "bin" / "taosr1"), "run", str(tmp_path / "config.yaml")],
                    versions={"python": "3.11.7", "taosr1-plugins": "0.1.0", "torch": "2.13.0+cpu"},
                    machine={"system": "Linux 6.1", "machine": "x86_64", "cpu": "Test CPU 9000", "cpu_count": 2,
                             "avx512_bf16": True, "amx_bf16": False},
                    started_at="2026-12-05T03:00:00")
    (run / "manifest.json").write_text(json.dumps(manifest))
    return (run, *rest)


def test_the_one_report_page(tmp_path):
    """report.html: warnings (calibration that lowered macro-F1, a stage that changed nothing, a failed stage),
    identical stages shown once, the GRPO curves, the worst errors with explanations, the run's metadata, and no
    absolute path of this machine."""
    from taosr1_plugins.evaluation.run_report import worst_errors

    run, *_ = build_report_run(tmp_path)
    ablation, paths = write_ablation(run, TRAINED_MODELS)
    page = paths["html"].read_text()
    assert [row.name for row in ablation.rows][-4:] == ["SFT-CoT", "+DPO", "+GRPO", "+CumPT"]
    assert str(tmp_path) not in page and "/tmp" not in page
    assert "../config.yaml" in page and "../data/pairs.csv" in page and "DataError: grpo/model: no tokenizer files" in page
    # uncalibrated 0.570 -> calibrated 0.562 on this run
    cumpt = ablation.rows[-1]
    assert cumpt.macro_f1_uncalibrated > cumpt.metrics.macro_f1
    assert (f"Calibration lowered macro-F1 on test: +CumPT uncalibrated {cumpt.macro_f1_uncalibrated:.3f} → "
            f"calibrated {cumpt.metrics.macro_f1:.3f}") in page
    assert "SFT-CoT and +DPO made identical decisions on all 120 test pairs" in page
    sections = [line for line in page.splitlines() if line.startswith('<section class="stage"')]
    assert [s.split('"')[3] for s in sections] == ["SFT-CoT|+DPO", "+GRPO", "+CumPT"]
    assert "<h2>SFT-CoT = +DPO</h2>" in page and "from deploy/test_scores_sft.jsonl" in page
    assert 'data-plot="grpo_curves"' in page and 'data-plot="ablation"' in page
    # the machine and the versions of the run
    assert "Test CPU 9000 × 2" in page and "AVX512-BF16: yes" in page and "<td>torch</td><td>2.13.0+cpu</td>" in page
    # the worst errors of the final row: furthest from gold first, with the eval stage's response
    name, errors = worst_errors(ablation)
    assert name == "+CumPT" and errors and [e["distance"] for e in errors] == sorted((e["distance"] for e in errors), reverse=True)
    assert page.count('<tr class="error"') == len(errors) and "because of reason" in page
    assert any(e["tags"] == ["negation"] for e in errors)


def test_report_says_why_the_ranking_view_covers_no_query_and_the_deploy_stage_names_its_model(tmp_path):
    from types import SimpleNamespace

    from taosr1_plugins.pipeline.stages import _write_run_report

    run, *_ = build_run(tmp_path)
    records = [json.loads(line) for line in (run / "data" / "test.jsonl").read_text().splitlines()]
    for i, record in enumerate(records):
        record["query"] = f"query {i}"  # one pair per query: nothing to rank within a query
    (run / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["deploy"] = {"status": "running"}  # as while the deploy stage itself writes the report
    (run / "manifest.json").write_text(json.dumps(manifest))
    ctx = SimpleNamespace(run_dir=run, config=SimpleNamespace(deploy=SimpleNamespace(irrelevant=[])))
    path = _write_run_report(ctx, "grpo")
    page = path.read_text()
    assert path == run / "report" / "report.html"
    assert "+CumPT" in json.loads((run / "report" / "ablation.json").read_text())["rows"][-1]["name"]
    assert "averaged over the 0" not in page
    assert ("The ranking view (NDCG) covers no query: each of the 120 test queries has a single judged pair" in page)
    # `taosr1 report` while deploy is unfinished: no +CumPT row, and the page says why
    ablation, paths = write_ablation(run, TRAINED_MODELS)
    assert ablation.rows[-1].name == "+GRPO" and "No +CumPT row: the deploy stage has not finished" in paths["html"].read_text()
    # a report that cannot be written warns; the deploy stage's scoring stands
    (run / "baselines" / "bm25" / "result.json").write_text(json.dumps({
        **json.loads((run / "baselines" / "bm25" / "result.json").read_text()),
        "metrics": compute_metrics(list("ESCI"), list("ESCI"), ESCI).to_dict()}))  # 4 pairs, the split has 120
    assert _write_run_report(ctx, "grpo") is None


def test_the_deploy_stage_writes_the_one_report_and_no_second_page(tmp_path, monkeypatch):
    """run_deploy with its scorer stubbed (the model scores are build_report_run's): it writes report/report.html
    through write_ablation, with the +CumPT row of the model it deployed, and nothing under deploy/ but scores
    and thresholds; its manifest outputs keep their figures."""
    import taosr1_plugins.deploy.scoring as scoring
    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.pipeline.context import RunContext
    from taosr1_plugins.pipeline.stages import run_deploy

    run, *_ = build_report_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["deploy"] = {"status": "running"}  # as the runner records it while the stage runs
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "data" / "dev.jsonl").write_text((run / "data" / "test.jsonl").read_text())
    dev_probs, dev_gold = synthetic(300, 12, sharpen=2.0)

    def score_records(model, records, out, settings=None):
        out = Path(out)
        if out.name == "dev_scores.jsonl":
            return write_scores(out, dev_probs, dev_gold)
        assert out.exists(), out  # the test scores build_report_run wrote for each stage
        return out

    monkeypatch.setattr(scoring, "score_records", score_records)
    config = RunConfig.model_validate({"run_dir": str(run), "format": "answer_first", "data": {"source": "esci"},
                                       "deploy": {"calibration": "temperature"}})
    outputs = run_deploy(RunContext(config))
    page = run / "report" / "report.html"
    assert outputs["report"] == str(page) and page.is_file() and not (run / "deploy" / "report.html").exists()
    assert list(outputs["test"]) == ["SFT-CoT", "+DPO", "+GRPO"] and outputs["model"] == "grpo"
    table = json.loads((run / "report" / "ablation.json").read_text())
    assert [row["name"] for row in table["rows"]][-1] == "+CumPT"
    cumpt_row = table["rows"][-1]
    assert cumpt_row["metrics"]["macro_f1"] == pytest.approx(outputs["test"]["+GRPO"]["macro_f1_cumpt"], abs=1e-4)
    assert "<h2>SFT-CoT = +DPO</h2>" in page.read_text() and str(tmp_path) not in page.read_text()
