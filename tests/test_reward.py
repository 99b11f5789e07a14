"""The relevance reward: its parts, its settings, and that it never raises (hypothesis fuzz)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from taosr1_plugins.builtin.schemes import ESCI, TAOSR1
from taosr1_plugins.core.formats import render_response
from taosr1_plugins.grpo.reward import RelevanceReward, RewardSettings, load_reward_settings, strip_trailing_special_tokens

REPO = Path(__file__).resolve().parents[1]


def answer(label: str, scheme=ESCI, reasoning: str = "The query asks for a phone case; this is one.") -> str:
    return render_response(reasoning, label, scheme, "think_answer")


def test_parts_of_the_reward():
    reward = RelevanceReward(RewardSettings(format_weight=0.2, correct_weight=1.0))
    right = reward.score(answer("E"), "E")
    assert (right.reward, right.correct, right.format_ok, right.label, right.gold) == (pytest.approx(1.2), 1.0, True, "E", "E")
    wrong = reward.score(answer("S"), "E")
    assert (wrong.reward, wrong.correct) == (pytest.approx(0.2), 0.0)
    # the right label without the reasoning block is malformed, so not counted as correct
    bare = reward.score("<answer>E</answer>", "E")
    assert (bare.reward, bare.correct, bare.format_ok, bare.label) == (0.0, 0.0, False, "E")
    assert reward.score("no tags at all", "E").reward == 0.0
    # answer-first responses are malformed for a think_answer reward
    assert reward.score(render_response("why", "E", ESCI, "answer_first"), "E").format_ok is False


def test_correct_without_format_when_configured():
    lenient = RelevanceReward(RewardSettings(correct_requires_format=False, format=None))
    result = lenient.score("<answer>E</answer>", "E")
    assert (result.correct, result.reward) == (1.0, pytest.approx(1.0))


def test_ordinal_partial_credit_by_distance():
    reward = RelevanceReward(RewardSettings(format_weight=0.0, correct_weight=1.0, partial_credit=(0.5, 0.25)))
    assert reward(answer("S"), "E") == pytest.approx(0.5)  # off by one level
    assert reward(answer("C"), "E") == pytest.approx(0.25)  # off by two
    assert reward(answer("I"), "E") == 0.0  # off by three: no credit configured
    assert reward.score(answer("S"), "E").correct == 0.0  # partial credit is not correctness


def test_labels_in_every_shape_frameworks_pass():
    reward = RelevanceReward()
    text = answer("3", TAOSR1)
    assert reward(text, {"gold": "3", "scheme": "taosr1"}) == pytest.approx(1.2)
    assert reward(text, '{"gold": "3", "scheme": "taosr1"}') == pytest.approx(1.2)  # JSON-encoded dict
    assert reward(answer("E"), "exact") == pytest.approx(1.2)  # a raw source label of the default scheme
    assert reward(answer("E"), {"label": "E"}) == pytest.approx(1.2)
    # a label that cannot be resolved still gets the format part, never an error
    assert reward(answer("E"), "not-a-level") == pytest.approx(0.2)
    assert reward(answer("E"), {"gold": "E", "scheme": "no-such-scheme"}) == 0.0
    for garbage in (None, 3.5, float("nan"), [], {"gold": ["E"]}, True, object(), b"E"):
        value = reward(answer("E"), garbage)
        assert isinstance(value, float) and math.isfinite(value)


def test_settings_from_yaml_and_validation(tmp_path):
    recipe = load_reward_settings(REPO / "recipes" / "openrlhf" / "taosr1_reward.yaml")
    assert recipe.correct_weight == 1.0 and recipe.partial_credit == ()
    nested = tmp_path / "grpo.yaml"
    nested.write_text("reward:\n  format_weight: 0.5\n  partial_credit: [0.3]\n")
    loaded = load_reward_settings(nested)
    assert (loaded.format_weight, loaded.partial_credit) == (0.5, (0.3,))
    for bad in ({"format_weight": float("inf")}, {"partial_credit": [1.5]}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            RewardSettings(**bad)


def test_trailing_special_tokens_are_stripped():
    assert strip_trailing_special_tokens("<answer>E</answer><|im_end|>\n<|endoftext|>") == "<answer>E</answer>"
    assert strip_trailing_special_tokens("x</s>") == "x"
    assert strip_trailing_special_tokens("a |> b |>") == "a |> b |>"
    assert strip_trailing_special_tokens(None) is None


def test_registered_as_plugins():
    from taosr1_plugins.grpo.reward import build_reward

    relevance = build_reward()  # RewardSettings().function is "relevance"
    assert isinstance(relevance, RelevanceReward)
    assert relevance(answer("E"), "E") == pytest.approx(1.2)
    correctness = build_reward(RewardSettings(function="correctness", partial_credit=(0.5,)))
    assert correctness(answer("E"), "E") == 1.0
    assert correctness(answer("S"), "E") == 0.0  # plain 0/1: no format part, no partial credit
    assert correctness(answer("E")[len("<think>"):], "E") == 0.0  # but still only in a well-formed response


# --- fuzz: whatever the response and label, a finite float and a 0/1 correctness ---------------------

TAG_PIECES = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "E", "S", "C", "I", "Exact", "4", " ", "\n", "<|im_end|>", "</s>"]
)
RESPONSES = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(TAG_PIECES, st.text(max_size=12)), max_size=30).map("".join),
    st.binary(max_size=64),
    st.none(),
    st.integers(),
)
LABELS = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(["E", "S", "C", "I", "exact", "3", "esci", "taosr1"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["gold", "label", "scheme", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
SETTINGS = [
    RelevanceReward(),
    RelevanceReward(RewardSettings(partial_credit=(0.5, 0.2), correct_requires_format=False, format=None)),
]


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(response=RESPONSES, label=LABELS)
def test_reward_never_raises_and_is_finite(response, label):
    for reward in SETTINGS:
        result = reward.score(response, label)
        assert isinstance(result.reward, float) and math.isfinite(result.reward)
        assert result.correct in (0.0, 1.0)
        assert reward(strip_trailing_special_tokens(response), label) >= 0.0
