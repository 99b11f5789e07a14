"""The main job end to end on CPU with the tiny model: every stage, the manifest, skipping and --from."""

import html
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from taosr1_plugins.pipeline.runner import STAGE_NAMES

REPO = Path(__file__).resolve().parents[1]
# the stages this answer-first config runs: post_cot converts think-first runs only
ENABLED = [name for name in STAGE_NAMES if name != "post_cot"]


def _taosr1(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_main_job_runs_every_stage_then_skips_unchanged_ones(tmp_path, tiny_model_dir):
    config = {
        "run_dir": str(tmp_path / "run"),
        "format": "answer_first",
        "data": {"source": "esci", "limit": 40},
        "model": {"base": str(tiny_model_dir)},
        "sft": {
            "options": {"launcher": "module"},
            "recipe": str(REPO / "recipes/llamafactory/sft_cot_smollm2.yaml"),
            "examples": 12,
            "balance": "equal",
            "overrides": {
                "max_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1
            },
        },
        "passn": {"n": 2, "max_new_tokens": 8, "limit": 4, "batch_size": 4, "difficulty": "one_pass",
                  "one_pass_prompts": 8},
        "dpo": {
            "options": {"launcher": "cli"},
            "recipe": str(REPO / "recipes/llamafactory/dpo_smollm2.yaml"),
            "overrides": {"max_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1},
        },
        "grpo": {"recipe": str(REPO / "recipes/trl/grpo_tiny.yaml"), "overrides": {"steps": 1}},
        "eval": {"limit": 4, "max_new_tokens": 8, "zero_shot_baseline": False},
        "baselines": {
            "cross_encoder": {"max_train": 16, "epochs": 1, "batch_size": 8, "max_length": 64},
            "direct_answer_overrides": {"max_steps": 1},
        },
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    first = _taosr1("run", str(config_path), cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    stages = manifest["stages"]
    assert [name for name, s in stages.items() if s["status"] == "done"] == ENABLED
    assert stages["import"]["outputs"]["records"] == 40
    sizes = stages["split"]["outputs"]
    assert sum(sizes.values()) == 40 and min(sizes.values()) > 0
    exported = stages["export"]["outputs"]
    assert exported["records"] == 12 and len(set(exported["per_level"].values())) == 1  # equal level shares
    sft = stages["sft"]["outputs"]
    assert sft["steps"] == 2 and math.isfinite(sft["last_loss"]) and math.isfinite(sft["train_loss"])
    assert manifest["versions"]["llamafactory"] == "0.9.5"
    # the tiny model writes garbage: every sample is wrong, so every pair's chosen side is the gold CoT
    assert stages["passn"]["outputs"]["prompts"] == 4
    # one-pass difficulty of 8 training prompts, compared with pass@2 on the 4 sampled ones; GRPO reads it
    one_pass = stages["passn"]["outputs"]["one_pass"]
    assert one_pass["prompts"] == 8 and one_pass["agreement"]["prompts"] == 4
    assert len((tmp_path / "run" / "passn" / "difficulty.jsonl").read_text().splitlines()) == 8
    # every trained model carries the prompt it was trained with
    for stage in ("sft", "dpo", "grpo"):
        style = json.loads((tmp_path / "run" / stage / "model" / "taosr1_prompt.json").read_text())
        assert style == {"instruction": "compact", "description_chars": 200, "term_matches": False}
    assert stages["pairs"]["outputs"]["pairs"] > 0
    assert stages["dpo"]["outputs"]["steps"] == 1 and math.isfinite(stages["dpo"]["outputs"]["train_loss"])
    grpo = stages["grpo"]["outputs"]
    assert grpo["steps"] == 1 and 0 <= grpo["frac_groups_filtered"] <= 1
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert metrics["SFT-CoT"]["n"] == metrics["+DPO"]["n"] == metrics["+GRPO"]["n"] == 4
    predictions = (tmp_path / "run" / "eval" / "predictions_sft.jsonl").read_text().splitlines()
    assert len(predictions) == 4
    deploy = stages["deploy"]["outputs"]
    assert deploy["model"] == "grpo" and list(deploy["test"]) == ["SFT-CoT", "+DPO", "+GRPO"]
    # the deploy stage writes the run's one report (issue 31: no second page under deploy/), as `taosr1 report` does
    assert deploy["report"].endswith("report/report.html") and not (tmp_path / "run" / "deploy" / "report.html").exists()
    report = (tmp_path / "run" / "report" / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 3
    assert 'data-plot="grpo_curves"' in report  # RL's training curves beside its scores
    cumpt = json.loads((tmp_path / "run" / "deploy" / "cumpt.json").read_text())
    assert cumpt["split"]["name"] == "dev" and set(cumpt["thresholds"]) == {"E", "S", "C"}

    second = _taosr1("run", str(config_path), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("unchanged, skipped") == len(ENABLED)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["sft"] == stages["sft"]

    third = _taosr1("run", str(config_path), "--from", "eval", "--until", "eval", cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("unchanged, skipped") == ENABLED.index("eval")
    rerun = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert rerun["eval"]["updated_at"] >= stages["eval"]["updated_at"] and rerun["deploy"] == stages["deploy"]

    _check_baselines_and_report(tmp_path, config_path, deploy, sizes["test"])


def _check_baselines_and_report(tmp_path, config_path, deploy, test_size):
    from sklearn.metrics import f1_score

    from taosr1_plugins.evaluation.baselines import BASELINES

    baselines = _taosr1("baselines", str(config_path), cwd=tmp_path)
    assert baselines.returncode == 0, baselines.stdout[-3000:] + baselines.stderr[-3000:]
    run = tmp_path / "run"
    for name in BASELINES:
        result = json.loads((run / "baselines" / name / "result.json").read_text())
        rows = [json.loads(line) for line in (run / "baselines" / name / "predictions.jsonl").read_text().splitlines()]
        assert len(rows) == result["metrics"]["n"] == test_size
        gold, predicted = [r["gold"] for r in rows], [r["predicted"] for r in rows]
        assert result["metrics"]["macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro"))
    assert json.loads((run / "baselines" / "zero_shot" / "result.json").read_text())["details"]["train_pairs"] == 0
    again = _taosr1("baselines", str(config_path), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("unchanged, skipped") == len(BASELINES)

    report = _taosr1("report", str(run), cwd=tmp_path)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    table = json.loads((run / "report" / "ablation.json").read_text())
    rows = {row["name"]: row for row in table["rows"]}
    assert list(rows)[-4:] == ["SFT-CoT", "+DPO", "+GRPO", "+CumPT"] and len(rows) == len(BASELINES) + 4
    assert all(row["metrics"]["n"] == test_size for row in rows.values())
    # the serving view of every row (issue 17): over-recall; a ranking for every row with a score
    # (the majority class has one constant score); ECE for the stages; tier stability between the stages
    # (over-recall is None when the test split holds no pair of the irrelevant level, as this small one may)
    assert all("over_recall" in row and (row["over_recall"] is None or 0 <= row["over_recall"] <= 1) for row in rows.values())
    assert all(row["ranking"] is not None for name, row in rows.items() if name != "majority class")
    assert all(rows[name]["ece"] is not None for name in ("SFT-CoT", "+DPO", "+GRPO", "+CumPT"))
    assert rows["+CumPT"]["ece_calibrated"] is not None and rows["+CumPT"]["macro_f1_uncalibrated"] is not None
    assert [(t["first"], t["second"]) for t in table["stability"]] == [("SFT-CoT", "+DPO"), ("+DPO", "+GRPO")]
    # the same figures the deploy stage computed on its own
    assert rows["SFT-CoT"]["metrics"]["macro_f1"] == pytest.approx(deploy["test"]["SFT-CoT"]["macro_f1_argmax"], abs=1e-4)
    assert rows["+CumPT"]["metrics"]["macro_f1"] == pytest.approx(deploy["test"]["+GRPO"]["macro_f1_cumpt"], abs=1e-4)
    # every row with its interval; each stage against the one before, the final row against the direct answer
    # both ways (argmax, and like for like with its own dev-fitted CumPT) and MiniLM
    assert set(table["intervals"]["rows"]) == set(rows)
    assert [(d["first"], d["second"]) for d in table["intervals"]["differences"]] == [
        ("SFT-CoT", "+DPO"), ("+DPO", "+GRPO"), ("+GRPO", "+CumPT"), (BASELINES["direct_answer"], "+CumPT"),
        (BASELINES["direct_answer_cumpt"], "+CumPT"), (BASELINES["cross_encoder"], "+CumPT")]
    # one page (issue 31 item 8): the table, its plot and the wall times are in report.html, not in
    # ablation.md/ablation.png beside it; ablation.json stays as the numbers for scripts
    page = (run / "report" / "report.html").read_text()
    assert all(f"<td>{html.escape(name)}</td>" in page for name in rows) and "<td>sft</td>" in page
    assert 'data-plot="ablation"' in page and str(tmp_path) not in page
    assert not (run / "report" / "ablation.md").exists() and not (run / "report" / "ablation.png").exists()

    bench = subprocess.run([sys.executable, str(REPO / "benchmarks/bench_pipeline.py"), str(run)],
                           capture_output=True, text=True, timeout=60)
    assert bench.returncode == 0, bench.stderr
    lines = {line.split()[0]: line.split() for line in bench.stdout.splitlines()[2:] if line.strip()}
    assert {"sft", "passn", "dpo", "grpo", "eval", "deploy"} <= set(lines) and lines["deploy"][-1] == "1.000"

    # while the deploy stage is unfinished its thresholds may belong to another model: no +CumPT row
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"]["deploy"]["status"] = "running"
    manifest_path.write_text(json.dumps(manifest))
    assert _taosr1("report", str(run), cwd=tmp_path).returncode == 0
    assert [row["name"] for row in json.loads((run / "report" / "ablation.json").read_text())["rows"]][-1] == "+GRPO"


def test_bad_config_names_the_field(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text("split:\n  by: query\n  ratioz: [1, 0, 0]\n")
    result = _taosr1("run", str(config_path), cwd=tmp_path)
    assert result.returncode != 0
    assert str(config_path) in result.stderr and "split.ratioz" in result.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_load_and_name_existing_recipes(name):
    from taosr1_plugins.pipeline.config import load_config

    config = load_config(REPO / "configs" / name)
    for path in (config.sft.recipe, config.dpo.recipe, config.grpo.recipe):
        assert config.resolve(path).is_file(), path
    if config.data.input is not None:  # the Kaggle sets are read from ../shared beside the checkout, never shipped
        assert config.resolve(config.data.input).parent.parent.name == "data"
        assert not config.resolve(config.data.input).is_relative_to(REPO)
