"""The training-backend seam (issue 26): a backend from a plugin package runs in the main job through the hook,
every training stage's model folder names the run's prompt, and a framework's own config refuses a typo in
``overrides`` or ``options`` before the first stage runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from plugin_helpers import installed_plugin_env

REPO = Path(__file__).resolve().parents[1]
BACKEND_FIXTURE = Path(__file__).parent / "fixtures" / "taosr1_backend_example"
# not the default prompt: a model folder that fell back to the default would not match it
STYLE = {"instruction": "compact", "description_chars": 50, "term_matches": True, "term_share": True}


def _run(config: dict, tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`taosr1 run` on ``config`` from a folder outside the checkout, so each recipe is named by its path."""
    recipes = {"sft": {"trl": "recipes/trl/sft_cot_smollm2.yaml", "llamafactory": "recipes/llamafactory/sft_cot_smollm2.yaml"},
               "dpo": {"trl": "recipes/trl/dpo_smollm2.yaml", "llamafactory": "recipes/llamafactory/dpo_smollm2.yaml"}}
    config = {"run_dir": str(tmp_path / "run"), "grpo": {}, **config}
    for stage, by_framework in recipes.items():
        section = config.setdefault(stage, {})
        recipe = by_framework.get(section.get("framework", "llamafactory"))
        if recipe:
            section.setdefault("recipe", str(REPO / recipe))
    config["grpo"].setdefault("recipe", str(REPO / "recipes/trl/grpo_smollm2.yaml"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "run", str(path), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env)


def test_a_backend_from_a_plugin_package_trains_in_the_main_job(tmp_path, tiny_model_dir):
    env = installed_plugin_env(BACKEND_FIXTURE, tmp_path / "plugin")
    config = {"format": "answer_first", "prompt": STYLE, "data": {"source": "esci", "limit": 30},
              "model": {"base": str(tiny_model_dir)},
              "sft": {"framework": "start_model", "examples": 6, "options": {"note": "floor"}},
              "passn": {"enabled": False}, "dpo": {"enabled": False}, "grpo": {"enabled": False}}
    result = _run(config, tmp_path, "--until", "sft", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sft = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["sft"]
    assert sft["status"] == "done"
    assert sft["outputs"]["started_from"] == str(tiny_model_dir) and sft["outputs"]["note"] == "floor"
    model = tmp_path / "run" / "sft" / "model"
    assert {"config.json", "model.safetensors"} <= {p.name for p in model.iterdir()}
    # written by the runner: the plugin's backend knows nothing of prompts or schemes
    assert json.loads((model / "taosr1_prompt.json").read_text()) == STYLE
    assert json.loads((model / "taosr1_scheme.json").read_text()) == {"scheme": "esci"}

    # its own check runs at preflight, and its refusal names the key
    refused = _run({**config, "run_dir": str(tmp_path / "run2"), "sft": {**config["sft"], "overrides": {"lr": 1}}},
                   tmp_path, env=env)
    assert refused.returncode == 2 and "field 'sft.overrides.lr': start_model trains nothing" in refused.stderr
    assert not (tmp_path / "run2").exists()
    # without the plugin the framework is unknown, and the error lists what is registered
    missing = _run({**config, "run_dir": str(tmp_path / "run3")}, tmp_path)
    assert missing.returncode == 2 and "field 'sft.framework': unknown training backend 'start_model'" in missing.stderr
    assert "registered: llamafactory, openrlhf, trl" in missing.stderr


TYPOS = {
    "trl sft": ({"sft": {"framework": "trl", "overrides": {"learning_rat": 1e-4}}},
                "field 'sft.overrides.learning_rat': not an argument of trl.SFTConfig (did you mean 'learning_rate'?)"),
    "llamafactory sft": ({"sft": {"framework": "llamafactory", "overrides": {"learning_rat": 1e-4}}},
                         "field 'sft.overrides.learning_rat': not an argument of LLaMA-Factory's trainer (did you mean 'learning_rate'?)"),
    "llamafactory dpo": ({"dpo": {"overrides": {"pref_betta": 0.2}}},
                         "field 'dpo.overrides.pref_betta': not an argument of LLaMA-Factory's trainer (did you mean 'pref_beta'?)"),
    "grpo setting": ({"grpo": {"overrides": {"stepz": 3}}}, "field 'grpo.overrides.stepz': Extra inputs are not permitted"),
    "trl grpo argument": ({"grpo": {"overrides": {"extra_trl_args": {"lr_schedular_type": "cosine"}}}},
                          "field 'grpo.overrides.extra_trl_args.lr_schedular_type': not an argument of trl.GRPOConfig"),
    "llamafactory option": ({"sft": {"framework": "llamafactory", "options": {"launcher": "gpu"}}},
                            "field 'sft.options.launcher': Input should be 'cli' or 'module'"),
    "trl takes no options": ({"sft": {"framework": "trl", "options": {"launcher": "cli"}}},
                             "field 'sft.options.launcher': Extra inputs are not permitted"),
    # values, by the framework's own argument classes: a field's declared type, then the classes' own checks
    "trl sft value of the wrong type": ({"sft": {"framework": "trl", "overrides": {"num_train_epochs": "abc"}}},
                                        "field 'sft.overrides.num_train_epochs': Input should be a valid number"),
    "trl dpo choice": ({"dpo": {"framework": "trl", "overrides": {"lr_scheduler_type": "nope"}}},
                       "field 'dpo.overrides.lr_scheduler_type': refused by trl.DPOConfig: nope is not a valid SchedulerType"),
    "llamafactory dpo choice": ({"dpo": {"overrides": {"finetuning_type": "nope"}}},
                                "field 'dpo.overrides.finetuning_type': Input should be 'lora', 'oft', 'freeze' or 'full'"),
    "renamed key": ({"grpo": {"backend": "openrlhf"}}, "'backend' is now 'framework'"),
    "TRL argument on openrlhf": ({"grpo": {"framework": "openrlhf", "recipe": str(REPO / "recipes/openrlhf/grpo_qwen.yaml"),
                                           "overrides": {"learning_rate": 1e-5},
                                           "options": {"launch_env": {"DRY_RUN": "1"},
                                                       "launch_script": str(REPO / "recipes/openrlhf/grpo_taosr1.sh")}}},
                                 "field 'grpo.learning_rate': a TRL trainer argument"),
    "label_weight on llamafactory": ({"format": "answer_first", "sft": {"framework": "llamafactory", "label_weight": 30}},
                                     "field 'sft.label_weight': needs framework: trl"),
}


@pytest.mark.parametrize("config, message", TYPOS.values(), ids=TYPOS.keys())
def test_a_typo_fails_preflight_naming_the_key_before_any_stage(tmp_path, config, message):
    result = _run({"model": {"base": "tiny"}, **config}, tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing ran


def _openrlhf_grpo(tmp_path: Path, launch_script: Path, launch_env: dict) -> object:
    """The GRPO stage of a run on OpenRLHF, its SFT and CoT stages' files in place (SFT model: the tiny one)."""
    from taosr1_plugins.core.jsonl import write_jsonl
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.data.samples import esci_sample_path
    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.pipeline.context import RunContext

    config = RunConfig.model_validate({
        "run_dir": str(tmp_path / "run"), "format": "answer_first", "prompt": STYLE, "dpo": {"enabled": False},
        "grpo": {"framework": "openrlhf", "recipe": str(REPO / "recipes/openrlhf/grpo_qwen.yaml"),
                 "options": {"launch_script": str(launch_script), "launch_env": launch_env, "python": sys.executable}},
    })
    ctx = RunContext(config)
    write_jsonl(ctx.path("cot", "train.jsonl"), list(import_records("esci", esci_sample_path()))[:30])
    return ctx


def test_openrlhf_dry_run_leaves_a_model_folder_that_names_the_prompt(tmp_path, tiny_model_dir):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from taosr1_plugins.core.prompts import prompt_style_of
    from taosr1_plugins.pipeline.stages import DryRunStop, run_grpo

    ctx = _openrlhf_grpo(tmp_path, REPO / "recipes/openrlhf/grpo_taosr1.sh", {"DRY_RUN": "1"})
    shutil.copytree(tiny_model_dir, ctx.model_dir("sft"))
    with pytest.raises(DryRunStop):
        run_grpo(ctx)
    assert "--ckpt.output_dir" in ctx.path("grpo", "launch.log").read_text()
    assert prompt_style_of(ctx.model_dir("grpo")).model_dump(exclude_defaults=True) == {
        k: v for k, v in STYLE.items() if k != "instruction"}
    assert json.loads((ctx.model_dir("grpo") / "taosr1_prompt.json").read_text())["description_chars"] == 50


# what OpenRLHF's save_model leaves in --ckpt.output_dir: weights, config and tokenizer, nothing of ours
FINISHED_JOB = """#!/usr/bin/env bash
set -euo pipefail
rm -rf "$OUTPUT_DIR" && mkdir -p "$OUTPUT_DIR"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do cp "$POLICY/$f" "$OUTPUT_DIR/"; done
"""


def test_openrlhf_finished_job_folder_names_the_prompt(tmp_path, tiny_model_dir, monkeypatch):
    import torch

    from taosr1_plugins.integrations.openrlhf import env as openrlhf_env
    from taosr1_plugins.pipeline.stages import run_grpo

    script = tmp_path / "finished_job.sh"
    script.write_text(FINISHED_JOB)
    ctx = _openrlhf_grpo(tmp_path, script, {})
    shutil.copytree(tiny_model_dir, ctx.model_dir("sft"))
    # the job ran on a cluster this machine does not have: what it leaves behind is what is under test
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(openrlhf_env, "check_openrlhf_env", lambda *args, **kwargs: {})
    outputs = run_grpo(ctx)
    assert outputs["dry_run"] is False
    model = ctx.model_dir("grpo")
    assert {p.name for p in model.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                                 "tokenizer_config.json", "taosr1_prompt.json", "taosr1_scheme.json"}
    assert json.loads((model / "taosr1_prompt.json").read_text()) == json.loads(ctx.config.prompt.model_dump_json())
    assert json.loads((model / "taosr1_scheme.json").read_text()) == {"scheme": ctx.scheme.name}
    assert os.path.getsize(model / "model.safetensors") == os.path.getsize(tiny_model_dir / "model.safetensors")
