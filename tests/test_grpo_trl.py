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

from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.passn.difficulty import difficulty_row

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
    from taosr1_plugins.data.importing import import_records

    return list(import_records("esci", esci_sample_path()))[:24]


def test_taosr1_grpo_train_trl_cli(tmp_path, tiny_model_dir, records):
    from taosr1_plugins.core.jsonl import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", records)
    # a third of the prompts always right (dropped), the rest hard
    rows = [difficulty_row(r.id, r.label, [r.label] * (8 if i % 3 == 0 else 1) + ["?"] * (0 if i % 3 == 0 else 7), [True] * 8) for i, r in enumerate(records)]
    write_jsonl(tmp_path / "difficulty.jsonl", rows)
    out = tmp_path / "grpo"
    # the CPU recipe, made smaller still so that CI stays fast
    config = yaml.safe_load((REPO / "recipes" / "trl" / "grpo_tiny.yaml").read_text())
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


class ParityCorrectness:
    """Correctness that varies within the groups of ``signal_ids`` only (a random tiny model is never
    right): a completion counts as correct when its text hashes to an odd number."""

    def __init__(self, signal_ids):
        from taosr1_plugins.grpo.reward import RelevanceReward

        self.signal_ids, self.real = signal_ids, RelevanceReward()

    def score(self, text, label):
        result = self.real.score(text, label)
        odd = float(zlib.crc32(text.encode()) % 2)
        return result._replace(correct=odd if label.get("id") in self.signal_ids else 0.0)


def _trainer(tmp_path, tiny_model_dir, records, reward_funcs, level_reward, max_extra_rollouts=16, guided_replay=False, **config_args):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from taosr1_plugins.builtin.schemes import ESCI
    from taosr1_plugins.grpo.dynamic_sampling import DynamicSamplingSettings
    from taosr1_plugins.grpo.prompts import grpo_prompt_row
    from taosr1_plugins.integrations.trl.compat import add_warnings_issued
    from taosr1_plugins.integrations.trl.trainer import DynamicSamplingGRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.padding_side = "left"
    config = GRPOConfig(
        output_dir=str(tmp_path / "trainer"), max_steps=2, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=config_args.pop("max_completion_length", 6), max_prompt_length=192, beta=0.04, logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=True, seed=0, **config_args,
    )
    rows = []
    for r in records:  # the record id inside the label lets ParityCorrectness tell the prompts apart
        row = grpo_prompt_row(r, ESCI, gold_response=guided_replay)
        rows.append({**row, "label": {**row["label"], "id": r.id}})
    return DynamicSamplingGRPOTrainer(
        model=add_warnings_issued(AutoModelForCausalLM.from_pretrained(tiny_model_dir)),
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        dynamic_sampling=DynamicSamplingSettings(max_extra_rollouts=max_extra_rollouts, oversample=2.0),
        level_reward=level_reward,
        guided_replay=guided_replay,
    )


def test_refills_replace_zero_variance_groups(tmp_path, tiny_model_dir, records):
    """Half the prompts get groups whose correctness never varies, half groups where it does: filtered
    groups must be replaced by fresh prompts whose groups carry signal."""
    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward

    signal_ids = {r.id for i, r in enumerate(records) if i % 2}
    trainer = _trainer(tmp_path, tiny_model_dir, records, [TrlRelevanceReward()], ParityCorrectness(signal_ids))
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


def test_groups_are_filtered_on_correctness_not_on_the_shaped_reward(tmp_path, tiny_model_dir, records):
    """Issue 14 item 8: a group whose rollouts are all wrong but get different shaped rewards (here: a reward
    that varies with the text) has no correctness signal, so it is dropped, as OpenRLHF drops it."""
    from taosr1_plugins.integrations.trl.reward import completion_text
    from taosr1_plugins.grpo.reward import RelevanceReward

    def varying(completions, **_):
        return [float(zlib.crc32(completion_text(c).encode()) % 5) for c in completions]

    trainer = _trainer(tmp_path, tiny_model_dir, records, [varying], RelevanceReward(), max_extra_rollouts=0)
    trainer.train()
    steps = [e for e in trainer.state.log_history if "reward" in e]
    assert steps and all(s["accuracy/all"] == 0.0 for s in steps)  # a random tiny model is never right
    assert any(s["frac_reward_zero_std"] < 1.0 for s in steps)  # TRL saw shaped-reward spread...
    assert all(s["dynamic_sampling/frac_zero_std_before"] == 1.0 for s in steps)  # ...we saw no correctness spread


@pytest.mark.parametrize("scores", [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 1]])
def test_group_filter_agrees_with_openrlhf_dynamic_filtering(scores):
    from taosr1_plugins.grpo.dynamic_sampling import groups_with_signal

    # openrlhf 0.11.2 trainer/ppo_utils/samples_generator.py, _generate_vllm: a prompt's experiences are kept
    # iff min_r < mean(scores) < max_r, with --algo.dynamic_filtering_range 0 1 in grpo_taosr1.sh (that module
    # imports ray and vllm at the top, so the rule is restated here rather than imported)
    openrlhf_keeps = 0 < sum(scores) / len(scores) < 1
    assert groups_with_signal([float(s) for s in scores], len(scores)) == [openrlhf_keeps]


def test_merged_batch_normaliser_counts_generated_tokens_as_trl_does(tmp_path, tiny_model_dir, records):
    """Issue 14 item 10: with mask_truncated_completions, TRL 0.24's num_items_in_batch is the sum of the
    generated completion lengths (truncated ones included), not completion_mask.sum()."""
    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward

    signal_ids = {r.id for i, r in enumerate(records) if i % 2}
    trainer = _trainer(tmp_path, tiny_model_dir, records, [TrlRelevanceReward()], ParityCorrectness(signal_ids),
                       mask_truncated_completions=True)
    merged_batches = []
    original_merge = trainer._merge

    def recording_merge(rounds, plan, size):
        merged = original_merge(rounds, plan, size)
        merged_batches.append(merged)
        return merged

    trainer._merge = recording_merge
    trainer.train()
    assert merged_batches, "no refill happened, so nothing was merged"
    eos = trainer.eos_token_id
    for merged in merged_batches:
        ids = merged["completion_ids"]
        # a row's generated length: up to and including its first EOS, else the whole (truncated) row
        lengths = [(row == eos).int().argmax().item() + 1 if (row == eos).any() else row.numel() for row in ids]
        assert int(merged["num_items_in_batch"]) == sum(lengths)
    assert any(int(m["num_items_in_batch"]) != int(m["completion_mask"].sum()) for m in merged_batches)


def test_guided_replay_puts_the_gold_response_into_every_all_wrong_group(tmp_path, tiny_model_dir, records):
    """TaoSR-AGRL's adaptive guided replay: a random tiny model is never right, so every group is all wrong and
    without replay has no signal (test above); with it, each group's last rollout is the gold response, TRL
    rewards it, and the group trains. Accuracy stays the policy's own (0), the normaliser counts the gold tokens."""
    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward
    from taosr1_plugins.grpo.reward import RelevanceReward

    traced = [r.model_copy(update={"cot": "every query term is in the title"}) for r in records]
    trainer = _trainer(tmp_path, tiny_model_dir, traced, [TrlRelevanceReward()], RelevanceReward(), max_extra_rollouts=0,
                       guided_replay=True, max_completion_length=32)
    generated = []
    original_generate = trainer._generate

    def recording_generate(prompts, images):
        out = original_generate(prompts, images)
        generated.append(out)
        return out

    trainer._generate = recording_generate
    trainer.train()
    steps = [e for e in trainer.state.log_history if "reward" in e]
    assert len(steps) == 2
    for step in steps:
        assert step["guided_replay/frac_groups_replayed"] == 1.0
        assert step["dynamic_sampling/frac_zero_std_before"] == 0.0  # one right rollout per group: every group has signal
        assert step["accuracy/all"] == 0.0 and step["reward"] > 0 and math.isfinite(step["loss"])
    assert trainer.dynamic_sampling_totals["groups_replayed"] == 2 * 2
    tokenizer = trainer.processing_class
    gold = {row["gold_response"] for row in trainer.train_dataset}
    for _prompt_ids, completion_ids, num_items, _logprobs, _kwargs in generated:
        texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        assert all(texts[g] in gold for g in range(3, len(texts), 4))  # the last rollout of each group of 4
        assert not any(texts[g] in gold for g in range(len(texts)) if g % 4 != 3)
        assert int(num_items) == sum(len(ids) for ids in completion_ids)
