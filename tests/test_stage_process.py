"""Model stages in their own processes (issue 14 item 3): the main job on the tiny model with
``isolate_stages: true``, and what comes back from a child that fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from taosr1_plugins.pipeline.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, model: str, **extra) -> Path:
    config = {
        "run_dir": str(tmp_path / "run"),
        "format": "answer_first",
        "isolate_stages": True,
        "data": {"source": "esci", "limit": 30},
        "model": {"base": model},
        "sft": {"framework": "trl", "recipe": str(REPO / "recipes/trl/sft_cot_smollm2.yaml"),
                "overrides": {"max_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                              "logging_steps": 1, "max_length": 256}},
        "passn": {"n": 2, "max_new_tokens": 4, "limit": 2, "batch_size": 2},
        "dpo": {"enabled": False},
        "grpo": {"enabled": False},
        "eval": {"limit": 2, "max_new_tokens": 4, "zero_shot_baseline": True, "batch_size": 2},
        "deploy": {"batch_size": 4},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# runs the main job in this interpreter and reports whether a model framework was ever imported here
MAIN_JOB = textwrap.dedent(
    """
    import json, sys
    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.runner import run_pipeline
    run_pipeline(load_config(sys.argv[1]), until_stage=sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps({m: m in sys.modules for m in ("torch", "transformers", "trl")}))
    """
)


@pytest.mark.slow
def test_main_job_runs_every_model_stage_in_its_own_process(tmp_path, tiny_model_dir):
    config = _config(tmp_path, str(tiny_model_dir))
    result = subprocess.run([sys.executable, "-c", MAIN_JOB, str(config)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # SFT, pass@N, eval and deploy all loaded models, none of them in the main process
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"torch": False, "transformers": False, "trl": False}
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert all(stages[name]["status"] == "done" for name in ("sft", "passn", "eval", "deploy"))
    assert stages["sft"]["outputs"]["steps"] == 1
    assert stages["passn"]["outputs"]["prompts"] == 2
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"base (zero-shot)", "SFT-CoT"} and all(m["n"] == 2 for m in metrics.values())
    assert stages["deploy"]["outputs"]["model"] == "sft" and (tmp_path / "run" / "report" / "report.html").is_file()


def test_a_failing_child_stage_fails_the_run_with_its_reason(tmp_path, tiny_model_dir):
    # a checkpoint that passes preflight's checks (config, weights, tokenizer) but names an architecture
    # transformers does not have: only the stage that loads it, in its own process, finds out
    model = tmp_path / "unknown_architecture"
    shutil.copytree(tiny_model_dir, model)
    config_file = model / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "model_type": "no_such_model_type"}))
    config = _config(tmp_path, str(model))
    result = subprocess.run([sys.executable, "-c", MAIN_JOB, str(config), "sft"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600)
    assert result.returncode != 0
    assert "StageProcessError" in result.stderr and "no_such_model_type" in result.stderr
    sft = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["sft"]
    assert sft["status"] == "failed" and "no_such_model_type" in sft["error"]


def test_a_data_error_in_a_child_exits_2_from_taosr1_run(tmp_path):
    # a bad input file surfaces in the import stage in-process; the deploy stage's own DataError path is
    # the child's: records of two schemes cannot be scored together
    from taosr1_plugins.errors import DataError
    from taosr1_plugins.pipeline.stage_process import run_stage_in_process

    config = RunConfig.model_validate({"run_dir": str(tmp_path / "run"), "isolate_stages": True})
    (tmp_path / "run" / "data").mkdir(parents=True)
    rows = [{"id": "a", "query": "q", "item": {"title": "t"}, "label": "E", "scheme": "esci"},
            {"id": "b", "query": "q", "item": {"title": "t"}, "label": "4", "scheme": "taosr1"}]
    (tmp_path / "run" / "data" / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "run" / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as caught:
        run_stage_in_process("deploy", config)
    assert caught.value.field == "scheme"


@pytest.mark.parametrize(("setting", "expected"), [(True, True), (False, False)])
def test_isolation_follows_the_config_key(setting, expected):
    from taosr1_plugins.pipeline.stage_process import isolation_wanted

    assert isolation_wanted(RunConfig(isolate_stages=setting)) is expected


def test_isolation_defaults_to_whether_cuda_is_there():
    import torch

    from taosr1_plugins.pipeline.stage_process import isolation_wanted

    assert isolation_wanted(RunConfig()) is torch.cuda.is_available()


def test_a_local_cot_teacher_runs_in_its_own_process(tmp_path, tiny_model_dir):
    # issue 29 item 4: an `hf` teacher on CUDA would otherwise hold its memory in the main process until the run ends
    config = _config(tmp_path, str(tiny_model_dir), data={"source": "esci", "limit": 12}, cot={
        "teacher": "hf", "k": 0, "retries": 0, "batch_size": 4,
        "options": {"model": str(tiny_model_dir), "max_new_tokens": 4, "batch_size": 4}})
    result = subprocess.run([sys.executable, "-c", MAIN_JOB, str(config), "cot"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"torch": False, "transformers": False, "trl": False}
    cot = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["cot"]
    assert cot["status"] == "done" and cot["outputs"]["teacher"] == "hf"
