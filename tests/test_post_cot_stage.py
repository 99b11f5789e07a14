"""Think-first training, then post-CoT conversion for serving (the paper's order), in the main job on CPU with the
tiny model: the post_cot stage trains the think-first policy on answer-first targets, and deploy scores that model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
TINY_STEPS = {"max_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1}


def _run(config: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "run", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)


def _config(tmp_path: Path, tiny_model_dir: Path, **changes) -> dict:
    config = {
        "run_dir": str(tmp_path / "run"),
        "format": "think_answer",
        "data": {"source": "esci", "limit": 30},
        "model": {"base": str(tiny_model_dir)},
        "sft": {"framework": "trl", "recipe": str(REPO / "recipes/trl/sft_cot_smollm2.yaml"), "examples": 6,
                "overrides": TINY_STEPS},
        "passn": {"enabled": False}, "dpo": {"enabled": False}, "grpo": {"enabled": False},
        "post_cot": {"enabled": True, "examples": 4, "label_weight": 5, "overrides": {"max_steps": 2, "warmup_steps": 0}},
        "eval": {"limit": 2, "max_new_tokens": 8, "zero_shot_baseline": False},
    }
    return {**config, **changes}


def _formatting(dataset_dir: Path) -> set[str]:
    return {entry["formatting"] for entry in json.loads((dataset_dir / "dataset_info.json").read_text()).values()}


def test_post_cot_converts_the_think_first_policy_and_deploy_scores_it(tmp_path, tiny_model_dir):
    result = _run(_config(tmp_path, tiny_model_dir), tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "run"
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["post_cot"]["status"] == "done" and stages["post_cot"]["outputs"]["steps"] == 2

    # SFT learnt the think-first form; the conversion the same examples' answer-first form (label, then trace)
    assert _formatting(run / "lf_data") == {"taosr1_cot"}
    assert _formatting(run / "post_cot" / "lf_data") == {"taosr1_post_cot"}
    converted = [json.loads(line) for line in (run / "post_cot" / "lf_data" / "taosr1_post_cot.records.jsonl").open()]
    think_first = {json.loads(line)["id"] for line in (run / "lf_data" / "taosr1_train.records.jsonl").open()}
    assert len(converted) == 4 and {row["id"] for row in converted} <= think_first

    # trained from the think-first model, not the base: its weights moved away from SFT's
    sft, post = load_file(run / "sft" / "model" / "model.safetensors"), load_file(run / "post_cot" / "model" / "model.safetensors")
    assert sft.keys() == post.keys() and any(not sft[name].equal(post[name]) for name in sft)
    assert json.loads((run / "post_cot" / "model" / "taosr1_scheme.json").read_text()) == {"scheme": "esci"}

    # deploy reads the label at the answer position of the answer-first model only, without the format warning
    deploy = stages["deploy"]["outputs"]
    assert deploy["model"] == "post_cot" and list(deploy["test"]) == ["+post-CoT"]
    assert (run / "deploy" / "test_scores_post_cot.jsonl").exists()
    assert not (run / "deploy" / "test_scores_sft.jsonl").exists()
    assert "were not trained in" not in result.stdout + result.stderr
    # eval generates each model in the form it learnt: the converted one answers first
    assert (run / "eval" / "predictions_post_cot.jsonl").exists() and (run / "eval" / "predictions_sft.jsonl").exists()


def test_post_cot_of_an_answer_first_run_is_refused_before_any_stage(tmp_path, tiny_model_dir):
    result = _run(_config(tmp_path, tiny_model_dir, format="answer_first"), tmp_path)
    assert result.returncode == 2
    assert "format" in result.stderr and "post_cot" in result.stderr
    assert not (tmp_path / "run").exists()


def test_deploy_reruns_on_the_model_it_serves_not_on_the_think_first_ones(tmp_path, tiny_model_dir):
    """With post_cot on, a changed think-first model re-runs eval (which generates it) and post_cot, but deploy only
    through the converted model it scores: its inputs are the served models' weights."""
    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.pipeline.context import RunContext
    from taosr1_plugins.pipeline.stages import STAGES

    ctx = RunContext(RunConfig.model_validate(_config(tmp_path, tiny_model_dir)))
    inputs = {stage.name: {str(path) for path in stage.inputs(ctx)} for stage in STAGES}
    sft, post = str(ctx.model_dir("sft") / "model.safetensors"), str(ctx.model_dir("post_cot") / "model.safetensors")
    assert sft in inputs["eval"] and post in inputs["eval"]
    assert sft in inputs["post_cot"]
    assert post in inputs["deploy"] and sft not in inputs["deploy"]
