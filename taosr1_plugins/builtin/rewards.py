"""Built-in reward functions: the GRPO relevance reward (format + correctness) and plain 0/1 correctness."""

from taosr1_plugins.hookspecs import hookimpl


def relevance(settings):
    from taosr1_plugins.grpo.reward import RelevanceReward

    return RelevanceReward(settings)


def correctness(settings):
    from taosr1_plugins.grpo.reward import correctness_reward

    return correctness_reward(settings)


@hookimpl
def register_reward_functions(register):
    register("relevance", relevance)
    register("correctness", correctness)
