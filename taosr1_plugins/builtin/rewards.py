"""Built-in rewards: the GRPO relevance reward (format + correctness) and plain 0/1 correctness."""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_reward_functions(register):
    from taosr1_plugins.grpo.reward import RelevanceReward, RewardSettings

    register("relevance", RelevanceReward())
    # What pass@N counts and OpenRLHF's dynamic filtering reads as `scores`.
    register("correctness", RelevanceReward(RewardSettings(format_weight=0.0, correct_weight=1.0)))
