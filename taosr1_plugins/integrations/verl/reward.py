"""The configured reward function (``relevance`` unless ``function`` names another) as a verl custom reward function.

Configure it with ``custom_reward_function.path=<this file>`` and ``custom_reward_function.name=compute_score``
(or ``compute_score_with_details``). verl 0.7 calls it in three shapes, all accepted here:

* per sample, by keyword (``naive``/``dapo`` reward managers and the reward loop):
  ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)`` -> float;
* per sample, by position (``prime``): ``compute_score(data_source, solution_str, ground_truth, extra_info)``;
* per batch (``batch`` manager): ``compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=,
  **reward_kwargs)`` -> one score per sample.

``solution_str`` is the decoded response, ``ground_truth`` the parquet row's ``reward_model.ground_truth`` (a
level key or ``{"gold", "scheme"}``), and ``extra_info`` may name the ``scheme``. Weights come from the YAML
file named by ``TAOSR1_REWARD_CONFIG``, as for OpenRLHF, and so does ``function``, the registered reward
function they configure; ``reward_kwargs`` (verl's
``custom_reward_function.reward_kwargs`` or ``reward_model.reward_kwargs``) named like a
:class:`~taosr1_plugins.grpo.reward.RewardSettings` field override it, and verl's own extra keywords
(``reward_router_address``, ...) are ignored.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

from taosr1_plugins.grpo.reward import (
    REWARD_CONFIG_ENV,
    Reward,
    RewardResult,
    RewardSettings,
    build_reward,
    check_reward_setup,
    load_reward_settings,
    reward_from_env,
    strip_trailing_special_tokens,
)

# verl loads this file by path on its reward workers: fail there, at load, if the reward cannot score.
check_reward_setup()


def _label(ground_truth: Any, extra_info: Any) -> Any:
    scheme = extra_info.get("scheme") if isinstance(extra_info, dict) else None
    if scheme and not isinstance(ground_truth, dict):
        return {"gold": ground_truth, "scheme": scheme}
    return ground_truth


@functools.lru_cache(maxsize=16)
def _reward_with(config: str | None, overrides: tuple[tuple[str, Any], ...]) -> Reward:
    base = load_reward_settings(config)
    # a bad value is configuration, not content: it raises, once, when verl first calls with it
    return build_reward(RewardSettings.model_validate({**base.model_dump(), **dict(overrides)}))


def _reward(reward_kwargs: dict[str, Any]) -> Reward:
    fields = RewardSettings.model_fields
    overrides = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in reward_kwargs.items() if k in fields))
    if not overrides:
        return reward_from_env()
    return _reward_with(os.environ.get(REWARD_CONFIG_ENV), overrides)


def _score_one(reward: Reward, solution_str: Any, ground_truth: Any, extra_info: Any) -> RewardResult:
    return reward.score(strip_trailing_special_tokens(solution_str), _label(ground_truth, extra_info))


def _batch(reward: Reward, solution_strs: Sequence, ground_truths: Any, extra_infos: Any) -> list[RewardResult]:
    solutions = list(solution_strs)
    truths = list(ground_truths) if ground_truths is not None else [None] * len(solutions)
    extras = list(extra_infos) if extra_infos is not None else [None] * len(solutions)
    return [_score_one(reward, s, t, e) for s, t, e in zip(solutions, truths, extras)]


def _details(result: RewardResult) -> dict[str, float]:
    return {"score": result.reward, "acc": result.correct, "format_ok": float(result.format_ok)}


def _verl_reward_function(value: Callable[[RewardResult], Any], name: str, doc: str):
    """One of verl's custom reward functions, returning ``value(result)`` per sample or a list of them."""

    def reward_function(
        data_source: Any = None,
        solution_str: Any = None,
        ground_truth: Any = None,
        extra_info: Any = None,
        *,
        data_sources: Any = None,
        solution_strs: Sequence | None = None,
        ground_truths: Any = None,
        extra_infos: Any = None,
        **reward_kwargs: Any,
    ):
        reward = _reward(reward_kwargs)
        if solution_strs is not None:
            return [value(result) for result in _batch(reward, solution_strs, ground_truths, extra_infos)]
        return value(_score_one(reward, solution_str, ground_truth, extra_info))

    reward_function.__name__ = reward_function.__qualname__ = name
    reward_function.__doc__ = doc
    return reward_function


compute_score = _verl_reward_function(
    lambda result: result.reward, "compute_score",
    "The shaped reward: a float per sample, or a list of them for the ``batch`` manager.",
)
compute_score_with_details = _verl_reward_function(
    _details, "compute_score_with_details",
    "A dict with ``score`` and the parts (per sample, or a list for ``batch``); verl logs the extra keys as "
    "reward_extra_info.",
)
