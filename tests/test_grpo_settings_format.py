"""The GRPO reward checks the response order the GRPO prompts ask for."""

from taosr1_plugins.core.formats import ResponseFormat, render_response
from taosr1_plugins.grpo.config import load_grpo_settings
from taosr1_plugins.grpo.reward import RelevanceReward
from taosr1_plugins.core.schemes import get_scheme


def test_reward_follows_the_run_format_unless_set_explicitly():
    answer_first = render_response("The item is what the query asks for.", "E", get_scheme("esci"), "answer_first")
    settings = load_grpo_settings(format="answer_first")
    assert settings.reward.format is ResponseFormat.ANSWER_FIRST
    result = RelevanceReward(settings.reward).score(answer_first, {"gold": "E", "scheme": "esci"})
    assert result.format_ok and result.correct == 1.0

    explicit = load_grpo_settings(format="answer_first", reward={"format": "think_answer"})
    assert explicit.reward.format is ResponseFormat.THINK_ANSWER
    assert not RelevanceReward(explicit.reward).score(answer_first, {"gold": "E", "scheme": "esci"}).format_ok
