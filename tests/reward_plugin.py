"""A third-party reward plugin for the tests: it registers ``mentions_gold``, a reward that no built-in
could produce (so its numbers coming out of an adapter prove the adapter scored with it)."""

from __future__ import annotations

from typing import Any

from taosr1_plugins.grpo.reward import RewardResult, RewardSettings, resolve_label
from taosr1_plugins.hookspecs import hookimpl

NAME = "mentions_gold"
HIT, MISS = 7.0, -3.0  # scaled by settings.correct_weight, to show the run's settings reach the factory


class MentionsGold:
    """``HIT * correct_weight`` when the gold level key appears anywhere in the response, else ``MISS``."""

    def __init__(self, settings: RewardSettings):
        self.settings = settings

    def score(self, response: Any, label: Any) -> RewardResult:
        _, gold = resolve_label(label, self.settings.scheme)
        hit = isinstance(response, str) and gold is not None and f">{gold}<" in response
        reward = (HIT if hit else MISS) * self.settings.correct_weight
        return RewardResult(reward, float(hit), hit, gold if hit else None, gold)

    def __call__(self, response: Any, label: Any) -> float:
        return self.score(response, label).reward


class RewardPlugin:
    @hookimpl
    def register_reward_functions(self, register):
        register(NAME, MentionsGold)
