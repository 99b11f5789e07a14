"""The reward under hostile policy output and careless callers: the same parse as the tag patterns
but linear in the response length, finite results for any content, one clear ValueError for misuse."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.formats import ANSWER_RE, THINK_RE, ParsedResponse, parse_response, render_response
from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward
from taosr1_plugins.grpo.reward import RelevanceReward, RewardSettings, check_batch, strip_trailing_special_tokens

REPO = Path(__file__).resolve().parents[1]


def regex_parse(text: str, scheme, fmt) -> ParsedResponse:
    """The parser as it was written with the lazy regexes: the reference the linear scan must equal."""
    answers = list(ANSWER_RE.finditer(text))
    thinks = list(THINK_RE.finditer(text))
    label = scheme.label_from_answer(answers[-1].group(1)) if answers else None
    reasoning = thinks[0].group(1).strip() if thinks else ANSWER_RE.sub("", text).strip()
    ok = (
        len(answers) == 1
        and len(thinks) == 1
        and label is not None
        and answers[0].group(1).strip() == scheme.level(label).token
        and bool(reasoning)
        and "<think>" not in reasoning
        and "<answer>" not in reasoning
        and not ANSWER_RE.sub("", THINK_RE.sub("", text)).strip()
    )
    if ok and fmt is not None:
        ok = (thinks[0].start() < answers[0].start()) == (fmt == "think_answer")
    return ParsedResponse(label, reasoning, ok)


PIECES = ["<think>", "</think>", "<answer>", "</answer>", "<ans", "wer>", "E", "S", " ", "\n", "because", "<", ">"]
soup = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=25).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=soup, fmt=st.sampled_from([None, "think_answer", "answer_first"]))
def test_linear_parse_equals_the_tag_patterns(text, fmt):
    assert parse_response(text, ESCI, fmt) == regex_parse(text, ESCI, fmt)


@pytest.mark.parametrize("fmt", ["think_answer", "answer_first"])
def test_well_formed_responses_still_parse(fmt):
    parsed = parse_response(render_response("the item matches", "E", ESCI, fmt), ESCI, fmt)
    assert parsed == ParsedResponse("E", "the item matches", True)


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" * 125_000,  # 1 MB: the lazy regex scanned to the end from every tag
        "<think>" * 145_000,
        "<think><answer>" * 70_000 + "</answer>",
        ("<answer>E</answer>" + "<think>" * 10) * 20_000,
    ],
    ids=["answers", "thinks", "mixed", "closed-then-open"],
)
def test_megabyte_adversarial_responses_score_and_agree_with_the_patterns_on_a_prefix(text):
    reward = RelevanceReward()
    result = reward.score(text, "E")
    assert math.isfinite(result.reward) and not result.format_ok
    short = text[: 2_000]
    assert parse_response(short, ESCI, "think_answer") == regex_parse(short, ESCI, "think_answer")


@settings(max_examples=200, deadline=None)
@given(
    response=st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.lists(st.text())),
    label=st.one_of(st.text(), st.none(), st.integers(), st.floats(), st.dictionaries(st.text(), st.text())),
)
def test_any_content_scores_finite_without_raising(response, label):
    reward = RelevanceReward(RewardSettings(format_weight=1e300, correct_weight=1e300, partial_credit=(0.5,)))
    assert math.isfinite(reward.score(response, label).reward)


@pytest.mark.parametrize(
    "weights",
    [
        {"format_weight": 1e308, "correct_weight": 1e308},
        {"format_weight": float("inf")},
        {"correct_weight": float("nan")},
        {"partial_credit": (1.5,)},
    ],
)
def test_weights_that_could_give_a_non_finite_reward_are_refused(weights):
    with pytest.raises(ValidationError):
        RewardSettings(**weights)


RIGHT = render_response("a case for the phone", "E", ESCI, "think_answer")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"completions": [RIGHT, RIGHT], "label": ["E"]}, "completions=2, label=1"),
        ({"completions": [RIGHT], "label": ["E", "S"]}, "completions=1, label=2"),
        ({"completions": None, "label": ["E"]}, "completions must be a list"),
        ({"completions": [RIGHT], "label": ["E"], "scheme": ["esci", "esci"]}, "scheme=2"),
        ({"completions": RIGHT, "label": ["E"]}, "completions must be a list"),
        # one label where a list of them belongs (issue 32): a TypeError from list(5), or {'gold': 'E'} read as "gold"
        ({"completions": [RIGHT], "label": 5}, "label must be a list with one entry per sample, got int"),
        ({"completions": [RIGHT], "label": 5.0}, "label must be a list with one entry per sample, got float"),
        ({"completions": [RIGHT], "label": object()}, "label must be a list with one entry per sample, got object"),
        ({"completions": [RIGHT], "label": {"gold": "E"}}, "label must be a list with one entry per sample, got dict"),
        ({"completions": [RIGHT], "label": "E"}, "label must be a list with one entry per sample, got str"),
        ({"completions": [RIGHT], "label": ["E"], "scheme": "esci"}, "scheme must be a list"),
    ],
)
def test_trl_adapter_names_mismatched_lengths(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrlRelevanceReward()(**kwargs)


def test_trl_adapter_scores_any_content():
    scores = TrlRelevanceReward()([RIGHT, None, "<answer>" * 1000, [{"role": "assistant", "content": 3}]],
                                  label=["E", "nonsense", None, {"gold": []}])
    assert len(scores) == 4 and all(math.isfinite(s) for s in scores) and scores[0] > 0


def _openrlhf_reward_func():
    spec = importlib.util.spec_from_file_location(
        "taosr1_reward_file", REPO / "taosr1_plugins" / "integrations" / "openrlhf" / "reward_func.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


@pytest.mark.parametrize(
    ("queries", "prompts", "labels", "message"),
    [
        (["p" + RIGHT, "p"], ["p"], ["E"], "queries=2, prompts=1, labels=1"),
        (["p" + RIGHT], ["p"], None, "labels must be a list"),
    ],
)
def test_openrlhf_reward_file_names_mismatched_lengths(queries, prompts, labels, message):
    with pytest.raises(ValueError, match=message):
        _openrlhf_reward_func()(queries, prompts, labels)


def test_check_batch_returns_the_common_length():
    assert check_batch(a=[1, 2], b=(3, 4)) == 2


def cutting_strip(text: str) -> str:
    """The end-token strip as it was written, cutting the string once per token: the reference."""
    while True:
        text = text.rstrip()
        if text.endswith("|>"):
            start = text.rfind("<|", max(0, len(text) - 48))
            if start < 0 or "|" in text[start + 2 : -2] or "<" in text[start + 2 : -2]:
                return text
            text = text[:start]
            continue
        literal = next((t for t in ("</s>", "<eos>", "<end_of_turn>") if text.endswith(t)), None)
        if literal is None:
            return text
        text = text[: -len(literal)]


END_PIECES = ["</s>", "<eos>", "<end_of_turn>", "<|im_end|>", "<|", "|>", "<", "|", " ", "\n", "x", "<|a|b|>"]


@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.sampled_from(END_PIECES) | st.text(max_size=2), max_size=20).map("".join))
def test_end_token_strip_equals_the_cutting_version(text):
    assert strip_trailing_special_tokens(text) == cutting_strip(text)


@pytest.mark.parametrize("token", ["</s>", "<|im_end|>", " </s>\n"])
def test_200_kb_of_end_tokens_are_stripped(token):
    text = "<answer>E</answer>" + token * (200_000 // len(token))  # the cutting version took minutes
    assert strip_trailing_special_tokens(text) == "<answer>E</answer>"
