"""The configured reward function as a TRL ``reward_funcs`` callable: ``f(completions, **columns) -> list[float]``.

TRL's GRPOTrainer calls it with ``prompts=``, ``completions=``, ``completion_ids=``, ``trainer_state=``
and every dataset column as a keyword list. Our GRPO rows carry the gold level in ``label`` (a level
key or ``{"gold", "scheme"}``) and may carry ``scheme``. Completions are strings for plain-text
datasets and ``[{"role": "assistant", "content": ...}]`` lists for conversational ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taosr1_plugins.grpo.reward import Reward, RewardSettings, build_reward, check_batch


def completion_text(completion: Any) -> Any:
    """The assistant text of a TRL completion (a string, or a list of chat messages)."""
    if isinstance(completion, list | tuple):
        parts = [m.get("content") for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "".join(p for p in parts if isinstance(p, str))
    return completion


class TrlRelevanceReward:
    """Callable for ``GRPOTrainer(reward_funcs=[...])``; TRL names its metrics after ``__name__``.

    Scores with ``reward`` if given, else with the reward function ``settings.function`` registers.
    """

    __name__ = "taosr1_relevance"

    def __init__(
        self, settings: RewardSettings | None = None, *, correctness_only: bool = False, reward: Reward | None = None
    ):
        self.reward = reward if reward is not None else build_reward(settings)
        self.correctness_only = correctness_only
        if correctness_only:
            self.__name__ = "taosr1_correct"

    def __call__(self, completions: Sequence[Any], label: Sequence[Any] | None = None, **columns: Any) -> list[float]:
        samples = check_batch(completions=completions)
        # checked as given, before list(): list(5) is a TypeError, and list({"gold": "E"}) the one label "gold"
        labels = label if label is not None else [None] * samples
        schemes = columns.get("scheme")
        schemes = schemes if schemes is not None else [None] * samples
        check_batch(completions=completions, label=labels, scheme=schemes)
        scores = []
        for completion, gold, scheme in zip(completions, labels, schemes):
            if scheme and not isinstance(gold, dict):
                gold = {"gold": gold, "scheme": scheme}
            result = self.reward.score(completion_text(completion), gold)
            scores.append(result.correct if self.correctness_only else result.reward)
        return scores
