"""The relevance reward as a verl custom reward function.

verl's reward managers call ``compute_score(data_source=..., solution_str=..., ground_truth=...,
extra_info=...)`` with keyword arguments; configure it with ``custom_reward_function.path=<this file>``
and ``custom_reward_function.name=compute_score``. ``solution_str`` is the decoded response,
``ground_truth`` comes from the parquet row's ``reward_model.ground_truth`` (a level key or
``{"gold", "scheme"}``), and ``extra_info`` may name the ``scheme``. Weights come from the YAML file named
by ``TAOSR1_REWARD_CONFIG``, as for OpenRLHF.
"""

from __future__ import annotations

from typing import Any

from taosr1_plugins.reward import check_reward_setup, reward_from_env, strip_trailing_special_tokens

# verl loads this file by path on its reward workers: fail there, at load, if the reward cannot score.
check_reward_setup()


def _label(ground_truth: Any, extra_info: Any) -> Any:
    scheme = extra_info.get("scheme") if isinstance(extra_info, dict) else None
    if scheme and not isinstance(ground_truth, dict):
        return {"gold": ground_truth, "scheme": scheme}
    return ground_truth


def compute_score(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None) -> float:
    """The shaped reward (a float: every verl reward manager accepts one)."""
    text = strip_trailing_special_tokens(solution_str)
    return reward_from_env().score(text, _label(ground_truth, extra_info)).reward


def compute_score_with_details(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None
) -> dict[str, float]:
    """A dict with ``score`` and the parts; verl logs the extra keys as reward_extra_info."""
    result = reward_from_env().score(strip_trailing_special_tokens(solution_str), _label(ground_truth, extra_info))
    return {"score": result.reward, "acc": result.correct, "format_ok": float(result.format_ok)}
