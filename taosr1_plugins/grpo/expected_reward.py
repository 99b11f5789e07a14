"""GRPO's label objective without rollouts, for answer-first policies (``rollouts: expected``), framework-free.

In ``<answer>L</answer><think>…</think>`` the label is the first token the policy decodes, so the reward of
a rollout is decided by one draw from the level distribution at the answer position. GRPO estimates the
gradient of the expected reward from G sampled rollouts, with the group's mean as baseline and its standard
deviation as scale: ``sum_i (r_i - mean) / std * grad log p(y_i) / G``. As G grows this tends to
``grad J / sigma``, where ``J = sum_l p(l) r(l)`` is the exact expected reward over the levels (any token
that is not a level is a malformed answer, reward 0) and ``sigma`` the reward's standard deviation under the
policy. Both come from one forward pass: no generation, no sampling variance (the paper samples because
its policy thinks first; an answer-first policy need not). The reward of each level is the configured
reward function's own, applied to a well-formed response naming that level, so partial credit and plugin
rewards carry over unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from taosr1_plugins.core.formats import ResponseFormat, render_response
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.grpo.reward import Reward

# the trace of the synthetic responses: the reward checks the format, and a trace must not be empty
_TRACE = "."


def level_rewards(reward: Reward, scheme: LabelScheme, gold: str, fmt: ResponseFormat | str) -> list[float]:
    """The reward of a well-formed response naming each level of ``scheme`` (scheme order), for gold ``gold``."""
    label = {"gold": gold, "scheme": scheme.name}
    return [reward.score(render_response(_TRACE, key, scheme, fmt), label).reward for key in scheme.keys]


def reward_moments(probs: Sequence[float], rewards: Sequence[float]) -> tuple[float, float]:
    """(expected reward, its standard deviation) when the levels have ``probs`` and the rest of the mass scores 0."""
    mean = sum(p * r for p, r in zip(probs, rewards))
    second = sum(p * r * r for p, r in zip(probs, rewards))
    return mean, max(0.0, second - mean * mean) ** 0.5
