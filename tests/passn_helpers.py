"""Crafted pass@N samples for the pair-rule tests: real records and prompts, hand-written responses.

Responses are rendered with the real ``render_response`` and scored by the real ``sample_row`` (parser,
stats), so only the model is replaced by the texts below.
"""

from __future__ import annotations

from taosr1_plugins.core.formats import ResponseFormat, render_response
from taosr1_plugins.passn.generation import Completion
from taosr1_plugins.passn.sample import SampleRow, sample_row
from taosr1_plugins.core.prompts import build_messages
from taosr1_plugins.core.schemes import get_scheme

FMT = ResponseFormat.THINK_ANSWER


def right(record, why: str = "it matches") -> str:
    return render_response(f"{why} ({record.id})", record.label, get_scheme(record.scheme), FMT)


def wrong(record, label: str, why: str = "it does not match") -> str:
    assert label != record.label
    return render_response(f"{why} ({record.id})", label, get_scheme(record.scheme), FMT)


def wrong_broken(record, label: str) -> str:
    """A wrong label without the <think> part: the label parses, the format is broken."""
    return f"<answer>{get_scheme(record.scheme).level(label).token}</answer>"


def gold_broken(record) -> str:
    """The gold label without reasoning: right label, broken format (not a correct sample)."""
    return f"<answer>{get_scheme(record.scheme).level(record.label).token}</answer>"


def no_answer(record, text: str = "I am not sure") -> str:
    return f"{text} about {record.id}"


def crafted_row(record, texts: list[str]) -> SampleRow:
    scheme = get_scheme(record.scheme)
    messages = build_messages(record, scheme, FMT)
    completions = [Completion(text, "stop") for text in texts]
    return SampleRow.model_validate(sample_row(record, scheme, FMT, messages, completions))


def other_label(record) -> str:
    return next(key for key in get_scheme(record.scheme).keys if key != record.label)
