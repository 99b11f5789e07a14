"""A third-party reward plugin for the tests: it registers ``mentions_gold``, a reward that no built-in
could produce (so its numbers coming out of an adapter prove the adapter scored with it), with a parameter of
its own (``reward.options.hit``, declared by its options model)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.grpo.reward import RewardResult, RewardSettings, resolve_label
from taosr1_plugins.hookspecs import hookimpl

NAME = "mentions_gold"
HIT, MISS = 7.0, -3.0  # scaled by settings.correct_weight, to show the run's settings reach the factory


class MentionsGoldOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hit: float = Field(HIT, allow_inf_nan=False, description="the reward of a hit, before correct_weight")


class MentionsGold:
    """``hit * correct_weight`` when the gold level key appears anywhere in the response, else ``MISS``."""

    options_model: ClassVar[type[BaseModel]] = MentionsGoldOptions

    def __init__(self, settings: RewardSettings):
        self.settings = settings
        self.options = MentionsGoldOptions.model_validate(settings.options)  # build_reward checked them first

    def score(self, response: Any, label: Any) -> RewardResult:
        _, gold = resolve_label(label, self.settings.scheme)
        hit = isinstance(response, str) and gold is not None and f">{gold}<" in response
        reward = (self.options.hit if hit else MISS) * self.settings.correct_weight
        return RewardResult(reward, float(hit), hit, gold if hit else None, gold)

    def __call__(self, response: Any, label: Any) -> float:
        return self.score(response, label).reward


class RewardPlugin:
    @hookimpl
    def register_reward_functions(self, register):
        register(NAME, MentionsGold)
