"""OpenRLHF 0.11 reward file: pass this file's path as ``--reward.remote_url``.

OpenRLHF (``openrlhf.utils.agent.SingleTurnAgentExecutor``) loads it with
``importlib.util.spec_from_file_location`` inside every rollout Ray actor and calls
``reward_func(queries, prompts, labels)`` with one-element lists, where ``queries`` is prompt + response
decoded with special tokens, ``prompts`` the chat-templated prompt and ``labels`` the ``--data.label_key``
values (ours: ``{"gold": ..., "scheme": ...}``). It reads ``rewards`` (advantages), ``scores`` (what
``--algo.dynamic_filtering_range`` filters groups on, so plain 0/1 correctness) and ``extra_logs``.

Reward settings come from the YAML file named by ``TAOSR1_REWARD_CONFIG`` (set it in the Ray job's
``runtime_env.env_vars``); without it the defaults of :class:`taosr1_plugins.grpo.reward.RewardSettings` apply.
Its ``function`` names the registered reward function that scores (default ``relevance``); a plugin's
must be installed on every rollout worker.
"""

from __future__ import annotations

from typing import Any

import torch

from taosr1_plugins.grpo.reward import check_batch, check_reward_setup, reward_from_env, strip_trailing_special_tokens

# OpenRLHF loads this file when a rollout actor starts but swallows errors raised by reward_func: a worker
# that cannot score must fail here, loudly, rather than give every response 0.
check_reward_setup()


def response_text(query: Any, prompt: Any) -> str:
    """The response part of ``query`` (prompt + response), without the trailing end-of-turn token."""
    if not isinstance(query, str):
        return ""
    response = query
    if isinstance(prompt, str) and prompt:
        if query.startswith(prompt):
            response = query[len(prompt) :]
        else:
            # Re-decoding the prompt tokens can differ from the prompt text at the very start (a BOS
            # token); our system prompt itself mentions <think>/<answer>, so it must be cut off.
            at = query.rfind(prompt[-64:])
            if at >= 0:
                response = query[at + len(prompt[-64:]) :]
    return strip_trailing_special_tokens(response)


def reward_func(queries: list, prompts: list, labels: list, **kwargs: Any) -> dict[str, Any]:
    check_batch(queries=queries, prompts=prompts, labels=labels)
    reward = reward_from_env()
    results = [reward.score(response_text(q, p), label) for q, p, label in zip(queries, prompts, labels)]
    rewards = torch.tensor([r.reward for r in results], dtype=torch.float)
    scores = torch.tensor([r.correct for r in results], dtype=torch.float)
    format_ok = torch.tensor([float(r.format_ok) for r in results], dtype=torch.float)
    if not results:  # the mean of nothing is NaN, which would poison OpenRLHF's running logs
        return {"rewards": rewards, "scores": scores, "extra_logs": {}}
    return {
        "rewards": rewards,
        "scores": scores,
        # OpenRLHF turns each value into a per-sample tensor and averages it in its logs.
        "extra_logs": {"taosr1/accuracy": scores.mean(), "taosr1/format_ok": format_ok.mean()},
    }
