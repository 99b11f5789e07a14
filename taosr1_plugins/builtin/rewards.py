"""Built-in reward functions: the GRPO relevance reward (format + correctness) and plain 0/1 correctness.

Implemented in grpo/reward.py; both are configured by the RewardSettings' own fields and take no ``options``.
"""

from taosr1_plugins.core.options import NoOptions
from taosr1_plugins.hookspecs import hookimpl


def relevance(settings):
    from taosr1_plugins.grpo.reward import RelevanceReward

    return RelevanceReward(settings)


def correctness(settings):
    from taosr1_plugins.grpo.reward import correctness_reward

    return correctness_reward(settings)


relevance.options_model = correctness.options_model = NoOptions


@hookimpl
def register_reward_functions(register):
    register("relevance", relevance)
    register("correctness", correctness)
