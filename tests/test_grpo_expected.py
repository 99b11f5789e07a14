"""`rollouts: expected`: GRPO's label objective computed exactly from one forward pass (answer-first policies)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from taosr1_plugins.data.samples import esci_sample_path


@pytest.fixture(scope="module")
def records():
    from taosr1_plugins.data.importing import import_records

    return list(import_records("esci", esci_sample_path()))[:8]


def _settings(**overrides):
    from taosr1_plugins.grpo.config import GrpoSettings

    # every prompt in every step, fp32 (no autocast) so that the logged reward can be recomputed exactly
    base = dict(format="answer_first", rollouts="expected", sampler="uniform", steps=3, prompts_per_step=8,
                learning_rate=1e-2, beta=0.0, accuracy_range=(0.0, 1.0), extra_trl_args={"bf16": False})
    return GrpoSettings(**{**base, **overrides})


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_level_rewards_are_the_reward_functions_own(records):
    from taosr1_plugins.builtin.schemes import ESCI
    from taosr1_plugins.grpo.expected_reward import level_rewards
    from taosr1_plugins.grpo.reward import RelevanceReward, RewardSettings

    reward = RelevanceReward(RewardSettings(format="answer_first", format_weight=0.2, correct_weight=1.0, partial_credit=(0.5,)))
    # ESCI in rank order E > S > C > I: gold S, its neighbours get half credit, I (two away) the format part only
    assert level_rewards(reward, ESCI, "S", "answer_first") == pytest.approx([0.7, 1.2, 0.7, 0.2])
    # a reward checking the other order finds every synthetic response malformed: all zero, so no signal
    think_first = RelevanceReward(RewardSettings(format="think_answer"))
    assert level_rewards(think_first, ESCI, "S", "answer_first") == [0.0] * 4


def test_expected_rollouts_need_the_answer_first_format():
    with pytest.raises(ValidationError, match="answer_first"):
        _settings(format="think_answer")
    with pytest.raises(ValidationError, match="accuracy_range"):
        _settings(accuracy_range=(0.9, 0.1))


def test_the_exact_gradient_ascends_the_expected_reward_and_trains_only_the_last_layers(tmp_path, tiny_model_dir, records):
    from taosr1_plugins.builtin.schemes import ESCI
    from taosr1_plugins.core.hf_chat import load_chat_model
    from taosr1_plugins.deploy.scorers.hf import HFLabelScorer
    from taosr1_plugins.grpo.expected_reward import level_rewards, reward_moments
    from taosr1_plugins.grpo.reward import build_reward
    from taosr1_plugins.integrations.trl.run import run_grpo_trl

    settings = _settings(trainable_layers=1)
    summary = run_grpo_trl(tiny_model_dir, records, [], tmp_path, settings)
    steps = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rewards = [step["reward"] for step in steps]
    # the same 8 prompts every step and no sampling noise: each step raises the expected reward
    assert len(steps) == 3 and rewards[0] < rewards[1] < rewards[2], rewards
    assert summary["rollouts"] == "expected" and summary["frac_zero_std_before"] == 0.0
    assert (tmp_path / "model" / "tokenizer.json").is_file()  # the next stage loads the policy as a checkpoint

    # step 1's logged reward is the expected reward of the starting model, scored the way deployment scores it
    scorer = HFLabelScorer(load_chat_model(str(tiny_model_dir), device="cpu"), ESCI, batch_size=8)
    probs = scorer.sampling_probabilities(records, temperature=settings.temperature)
    reward = build_reward(settings.reward)
    expected = [reward_moments(p, level_rewards(reward, ESCI, r.label, "answer_first"))[0] for p, r in zip(probs, records)]
    assert rewards[0] == pytest.approx(sum(expected) / len(expected), rel=1e-3)

    before, after = _weights(tiny_model_dir), _weights(tmp_path / "model")
    last = max(int(name.split(".")[2]) for name in before if name.startswith("model.layers."))
    changed = {name for name in before if not (before[name] == after[name]).all()}
    assert changed and all(name.startswith(f"model.layers.{last}.") for name in changed), sorted(changed)[:5]
    # the folder is a model the next stages load: a plain Trainer saves no tokenizer of its own
    assert (tmp_path / "model" / "tokenizer.json").is_file()


def test_prompts_outside_the_accuracy_range_leave_the_policy_alone(tmp_path, tiny_model_dir, records):
    from taosr1_plugins.integrations.trl.run import run_grpo_trl

    # a random tiny model never gives the gold level half its mass: every prompt is a group with no signal
    summary = run_grpo_trl(tiny_model_dir, records, [], tmp_path, _settings(steps=2, accuracy_range=(0.5, 1.0)))
    assert summary["frac_zero_std_before"] == 1.0 and summary["frac_groups_filtered"] == 1.0
    before, after = _weights(tiny_model_dir), _weights(tmp_path / "model")
    assert all((before[name] == after[name]).all() for name in before)
