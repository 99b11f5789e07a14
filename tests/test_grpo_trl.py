"""Real GRPO steps with TRL's GRPOTrainer on the tiny model: our reward, sampler and group filter."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml

from taosr1_plugins.data_files import esci_sample_path
from taosr1_plugins.difficulty import difficulty_row

REPO = Path(__file__).resolve().parents[1]
STEP_KEYS = (
    "reward",
    "reward_std",
    "frac_reward_zero_std",
    "dynamic_sampling/frac_zero_std_before",
    "dynamic_sampling/frac_zero_std_after",
    "dynamic_sampling/frac_groups_filtered",
    "dynamic_sampling/extra_rollouts",
    "accuracy/all",
)


@pytest.fixture(scope="module")
def records():
    from taosr1_plugins.importing import import_records

    return list(import_records("esci", esci_sample_path()))[:24]


def test_taosr1_grpo_train_trl_cli(tmp_path, tiny_model_dir, records):
    from taosr1_plugins.jsonl import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", records)
    # a third of the prompts always right (dropped), the rest hard
    rows = [difficulty_row(r.id, r.label, [r.label] * (8 if i % 3 == 0 else 1) + ["?"] * (0 if i % 3 == 0 else 7), [True] * 8) for i, r in enumerate(records)]
    write_jsonl(tmp_path / "difficulty.jsonl", rows)
    out = tmp_path / "grpo"
    # the CPU recipe, made smaller still so that CI stays fast
    config = yaml.safe_load((REPO / "recipes" / "cpu" / "grpo_tiny.yaml").read_text())
    config.update(max_completion_length=8, max_prompt_length=192, dynamic_sampling={"max_extra_rollouts": 6, "oversample": 2.0})
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", "grpo", "train", "--backend", "trl", "--model", str(tiny_model_dir),
         "--data", str(tmp_path / "train.jsonl"), "--difficulty", str(tmp_path / "difficulty.jsonl"),
         "--out-dir", str(out), "--config", str(tmp_path / "grpo.yaml"), "--steps", "2"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2
    assert summary["selection"]["per_bucket"]["always"]["kept"] == 0 and summary["prompts"] == 16
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 2
    for step in steps:
        assert all(key in step for key in STEP_KEYS), sorted(step)
        assert all(math.isfinite(step[key]) for key in STEP_KEYS)
        assert step["dynamic_sampling/frac_zero_std_after"] <= step["dynamic_sampling/frac_zero_std_before"]
        assert step["dynamic_sampling/extra_rollouts"] <= 6  # the budget per step
    assert 0.0 <= summary["frac_groups_filtered"] <= 1.0
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "tokenizer.json").is_file()


def test_refills_replace_zero_variance_groups(tmp_path, tiny_model_dir, records):
    """Half the prompts get a constant reward (zero variance), half a reward that varies with the
    completion: filtered groups must be replaced by fresh prompts whose groups carry signal."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from taosr1_plugins.builtin.schemes import ESCI
    from taosr1_plugins.group_filter import DynamicSamplingSettings
    from taosr1_plugins.grpo_prompts import grpo_prompt_row
    from taosr1_plugins.integrations.trl.compat import add_warnings_issued
    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward, completion_text
    from taosr1_plugins.integrations.trl.trainer import DynamicSamplingGRPOTrainer

    signal_ids = {r.id for i, r in enumerate(records) if i % 2}

    def half_signal(completions, id, **_):
        return [float(pid in signal_ids and zlib.crc32(completion_text(c).encode()) % 2) for c, pid in zip(completions, id)]

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.padding_side = "left"
    config = GRPOConfig(
        output_dir=str(tmp_path / "trainer"), max_steps=2, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=6, max_prompt_length=192, beta=0.04, logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
    )
    trainer = DynamicSamplingGRPOTrainer(
        model=add_warnings_issued(AutoModelForCausalLM.from_pretrained(tiny_model_dir)),
        reward_funcs=[TrlRelevanceReward(), half_signal],
        args=config,
        train_dataset=Dataset.from_list([grpo_prompt_row(r, ESCI) for r in records]),
        processing_class=tokenizer,
        dynamic_sampling=DynamicSamplingSettings(max_extra_rollouts=16, oversample=2.0),
    )
    trainer.train()
    steps = [e for e in trainer.state.log_history if "reward" in e]
    before = [s["dynamic_sampling/frac_zero_std_before"] for s in steps]
    after = [s["dynamic_sampling/frac_zero_std_after"] for s in steps]
    assert sum(before) > 0  # some first-round groups had no signal...
    assert sum(after) < sum(before)  # ...and refills replaced them
    assert sum(s["dynamic_sampling/extra_rollouts"] for s in steps) > 0
    assert all(s["dynamic_sampling/extra_rollouts"] <= 16 for s in steps)
    assert all(math.isfinite(s["loss"]) for s in steps)
    totals = trainer.dynamic_sampling_totals
    assert totals["groups_generated"] > 2 * 2 and 0 < totals["groups_filtered"] < totals["groups_generated"]
