"""Our verl reward function called in every shape verl 0.7.0 calls a custom ``compute_score``.

verl is not installed here (it pulls CUDA torch, ray and vLLM), so each call below restates verl v0.7.0's
call statement exactly, with file and line; the reward file itself is loaded the way verl loads it
(``verl/utils/import_utils.py`` ``load_extern_object``: spec_from_file_location + exec_module + getattr).
"""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.formats import render_response

REPO = Path(__file__).resolve().parents[1]
VERL_REWARD_FILE = REPO / "taosr1_plugins" / "integrations" / "verl" / "reward.py"

RIGHT = render_response("The item is the phone case the query names.", "E", ESCI, "think_answer")
WRONG = render_response("A case, but for another phone.", "S", ESCI, "think_answer")
NEAR = render_response("A case for the phone, of another colour.", "S", ESCI, "think_answer")


def load_extern_object(module_path: str, object_name: str):
    spec = importlib.util.spec_from_file_location("custom_module", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, object_name)


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
    # verl v0.7.0 verl/trainer/ppo/reward.py:42-48 (get_custom_reward_fn wraps the user function in this,
    # with extra_kwargs = custom_reward_function.reward_kwargs, line 92-94)
    merged_kwargs = {**kwargs, **extra_kwargs}
    return raw_fn(*args, **merged_kwargs)


def custom_reward_fn(name: str, reward_kwargs: dict | None = None):
    raw_fn = load_extern_object(module_path=str(VERL_REWARD_FILE), object_name=name)
    return partial(_call_with_kwargs, raw_fn, dict(reward_kwargs or {}))


@pytest.mark.parametrize("reward_kwargs", [{}, {"alpha": 1}])
def test_naive_and_dapo_managers_keyword_call(reward_kwargs):
    compute_score = custom_reward_fn("compute_score", reward_kwargs)
    # verl/workers/reward_manager/naive.py:85-90 (dapo.py:97-102 is the same call)
    score = compute_score(data_source="esci", solution_str=RIGHT, ground_truth="E",
                          extra_info={"scheme": "esci", "num_turns": None, "rollout_reward_scores": {}})
    assert score == pytest.approx(1.2)


def test_reward_loop_passes_its_own_extra_keywords():
    compute_score = custom_reward_fn("compute_score_with_details")
    # verl/experimental/reward_loop/reward_manager/naive.py:58-83: extra_reward_kwargs when a reward router runs
    extra_reward_kwargs = {"reward_router_address": "127.0.0.1:9000", "reward_model_tokenizer": None}
    result = compute_score(data_source="esci", solution_str=WRONG, ground_truth={"gold": "E", "scheme": "esci"},
                           extra_info={}, **extra_reward_kwargs)
    assert result == {"score": pytest.approx(0.2), "acc": 0.0, "format_ok": 1.0}


def test_batch_manager_call_and_result_handling():
    compute_score = custom_reward_fn("compute_score_with_details", {"partial_credit": [0.5]})
    responses = [RIGHT, WRONG, "garbage", NEAR]
    # verl/workers/reward_manager/batch.py:62-76: numpy object arrays from non_tensor_batch, reward_kwargs last
    data_sources = np.array(["esci"] * 4, dtype=object)
    ground_truths = ["E", "E", "E", "E"]
    extras = np.array([{"scheme": "esci"} for _ in range(4)], dtype=object)
    for i in range(len(responses)):
        extras[i]["rollout_reward_scores"] = {}
    scores = compute_score(data_sources=data_sources, solution_strs=responses, ground_truths=ground_truths,
                           extra_infos=extras)
    assert len(scores) == len(responses)
    # batch.py:98-109: a dict score contributes score["score"] and every key to reward_extra_info
    rewards = [s["score"] if isinstance(s, dict) else s for s in scores]
    assert rewards[0] == pytest.approx(1.2) and rewards[2] == 0.0
    assert rewards[1] == rewards[3] == pytest.approx(0.2 + 0.5)  # S is one level from E: half credit
    assert [s["acc"] for s in scores] == [1.0, 0.0, 0.0, 0.0]


def test_batch_call_without_details_returns_floats():
    compute_score = custom_reward_fn("compute_score")
    scores = compute_score(data_sources=["esci", "esci"], solution_strs=[RIGHT, WRONG], ground_truths=["E", "E"],
                           extra_infos=[{"scheme": "esci"}, {"scheme": "esci"}])
    assert scores == pytest.approx([1.2, 0.2])


def test_prime_manager_positional_call():
    compute_score = custom_reward_fn("compute_score")
    # verl/workers/reward_manager/prime.py:35: partial(evaluation_func, task, completion, reference, task_extra_info)
    assert partial(compute_score, "esci", RIGHT, "E", {"scheme": "esci"})() == pytest.approx(1.2)


def test_reward_kwargs_that_name_a_setting_must_be_valid():
    compute_score = custom_reward_fn("compute_score", {"format_weight": "heavy"})
    with pytest.raises(ValueError, match="format_weight"):
        compute_score(data_source="esci", solution_str=RIGHT, ground_truth="E", extra_info={"scheme": "esci"})


def test_content_never_raises_in_any_shape():
    compute_score = custom_reward_fn("compute_score")
    assert compute_score(data_source=None, solution_str=None, ground_truth=None, extra_info=None) == 0.0
    from taosr1_plugins.grpo.reward import RewardSettings

    # no ground truth: a well-formed answer earns its format part only, unusable text nothing
    scores = compute_score(data_sources=None, solution_strs=[None, 3, RIGHT], ground_truths=None, extra_infos=None)
    assert scores == [0.0, 0.0, pytest.approx(RewardSettings().format_weight)]
