"""TAOSR1_REWARD_CONFIG reaches the OpenRLHF and verl reward files: the run's format and partial credit
change their scores exactly as RewardSettings says (each file loaded the way its framework loads it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.formats import render_response
from taosr1_plugins.grpo.reward import REWARD_CONFIG_ENV, RelevanceReward, load_reward_settings

INTEGRATIONS = Path(__file__).resolve().parents[1] / "taosr1_plugins" / "integrations"
ANSWER_FIRST_RIGHT = render_response("a case for that phone", "E", ESCI, "answer_first")
ANSWER_FIRST_NEAR = render_response("a case, another model", "S", ESCI, "answer_first")  # one level off
THINK_FIRST_RIGHT = render_response("a case for that phone", "E", ESCI, "think_answer")


def load_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def openrlhf_scores(responses: list[str]) -> list[float]:
    reward_func = load_file(INTEGRATIONS / "openrlhf" / "reward_func.py", "openrlhf_reward").reward_func
    prompt = "PROMPT "
    out = reward_func([prompt + r for r in responses], [prompt] * len(responses), [{"gold": "E", "scheme": "esci"}] * len(responses))
    return out["rewards"].tolist()


def verl_scores(responses: list[str]) -> list[float]:
    compute_score = load_file(INTEGRATIONS / "verl" / "reward.py", "verl_reward").compute_score
    return [compute_score("esci", r, "E", {"scheme": "esci"}) for r in responses]


@pytest.mark.parametrize("scores", [openrlhf_scores, verl_scores], ids=["openrlhf", "verl"])
def test_reward_files_follow_the_run_config(tmp_path, monkeypatch, scores):
    responses = [ANSWER_FIRST_RIGHT, ANSWER_FIRST_NEAR, THINK_FIRST_RIGHT]
    monkeypatch.delenv(REWARD_CONFIG_ENV, raising=False)
    default = scores(responses)
    assert default == pytest.approx([RelevanceReward().score(r, "E").reward for r in responses])

    config = tmp_path / "reward.yaml"
    config.write_text("reward:\n  format: answer_first\n  format_weight: 0.3\n  partial_credit: [0.5]\n")
    monkeypatch.setenv(REWARD_CONFIG_ENV, str(config))
    configured = scores(responses)
    expected = RelevanceReward(load_reward_settings(config))
    assert configured == pytest.approx([expected.score(r, "E").reward for r in responses])
    # what the settings mean, spelled out: the run's format earns format credit, a near miss half credit
    assert configured == pytest.approx([1.3, 0.3 + 0.5, 0.0])
    assert configured != default
