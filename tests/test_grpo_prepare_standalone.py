"""`taosr1 grpo prepare` on its own (issue 29 item 5), the route recipes/openrlhf/grpo_taosr1.sh's header shows: the
format, GRPO settings and length budgets of the main job's config, the prompt the policy's folder was trained with,
a prompt budget sized to the policy's tokenizer, and a budget set too short refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from taosr1_plugins.cli import app
from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.jsonl import read_jsonl, write_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.grpo.prompts import grpo_prompt_row
from taosr1_plugins.core.prompts import PromptStyle, write_prompt_style
from taosr1_plugins.data.importing import import_records
from taosr1_plugins.data.samples import esci_sample_path

REPO = Path(__file__).resolve().parents[1]
TRAINED_STYLE = PromptStyle(instruction="full", description_chars=600, term_matches=True)


def _setup(tmp_path: Path, tiny_model_dir: Path, **grpo_overrides) -> tuple[Path, Path, Path]:
    write_jsonl(tmp_path / "train.jsonl", list(import_records("esci", esci_sample_path()))[:12])
    policy = tmp_path / "dpo_model"  # a trained policy: the tiny model with the prompt it was trained on
    shutil.copytree(tiny_model_dir, policy)
    write_prompt_style(policy, TRAINED_STYLE)
    run_config = tmp_path / "run.yaml"
    run_config.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"), "format": "answer_first", "prompt": {"instruction": "compact"},
        "passn": {"max_new_tokens": 1024}, "eval": {"max_new_tokens": 512},
        "grpo": {"framework": "openrlhf", "recipe": str(REPO / "recipes/openrlhf/grpo_qwen.yaml"),
                 "overrides": grpo_overrides},
    }))
    return tmp_path / "train.jsonl", policy, run_config


def _prepare(data: Path, policy: Path, run_config: Path, out: Path):
    return CliRunner().invoke(app, ["grpo", "prepare", "--data", str(data), "--model", str(policy),
                                    "--run-config", str(run_config), "--out-dir", str(out)])


def _env(out: Path) -> dict[str, str]:
    lines = (out / "openrlhf_prompts.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_prepare_takes_the_main_jobs_settings_and_the_policys_prompt(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    data, policy, run_config = _setup(tmp_path, tiny_model_dir)
    out = tmp_path / "grpo"
    result = _prepare(data, policy, run_config, out)
    assert result.exit_code == 0, result.output
    env = _env(out)
    # the completion budget is the run's longest (pass@N's), not the GRPO default of 96
    assert env["MAX_NEW_TOKENS"] == "1024"
    assert yaml.safe_load((out / "reward.yaml").read_text())["format"] == "answer_first"
    rows = [json.loads(line) for line in (out / "prompts_all.jsonl").read_text().splitlines()]
    # each prompt as the policy was trained on it (its folder's style, not the run config's compact one), answer first
    records = {record.id: record for record in read_jsonl(data, Record)}
    for row in rows:
        record = records[row["id"]]
        assert row["prompt"] == grpo_prompt_row(record, ESCI, "answer_first", TRAINED_STYLE)["prompt"]
        assert row["prompt"] != grpo_prompt_row(record, ESCI, "answer_first", PromptStyle())["prompt"]
    tokenizer = AutoTokenizer.from_pretrained(policy)
    longest = max(len(tokenizer(tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True),
                                add_special_tokens=False)["input_ids"]) for row in rows)
    assert int(env["MAX_LEN"]) - int(env["MAX_NEW_TOKENS"]) >= longest


def test_prepare_refuses_a_prompt_budget_the_policys_prompts_exceed(tmp_path, tiny_model_dir):
    data, policy, run_config = _setup(tmp_path, tiny_model_dir, max_prompt_length=64)
    out = tmp_path / "grpo"
    result = _prepare(data, policy, run_config, out)
    assert result.exit_code == 2
    assert "max_prompt_length 64" in result.output and "grpo.overrides" in result.output
    assert not out.exists()  # refused before anything was written
