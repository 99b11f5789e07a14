"""Response formats (think-then-answer, answer-first) and the one parser for model output."""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple

from .schemes import LabelScheme

THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


class ResponseFormat(str, Enum):
    THINK_ANSWER = "think_answer"  # <think>reasoning</think><answer>LABEL</answer>
    ANSWER_FIRST = "answer_first"  # post-CoT serving form: the label is the first thing decoded

    def __str__(self) -> str:
        return self.value


class ParsedResponse(NamedTuple):
    label: str | None
    reasoning: str
    format_ok: bool


def render_response(reasoning: str, label: str, scheme: LabelScheme, fmt: ResponseFormat | str) -> str:
    token = scheme.level(label).token
    think = f"<think>\n{reasoning.strip()}\n</think>"
    answer = f"<answer>{token}</answer>"
    if ResponseFormat(fmt) is ResponseFormat.ANSWER_FIRST:
        return f"{answer}\n{think}"
    return f"{think}\n{answer}"


def answer_only(label: str, scheme: LabelScheme) -> str:
    """The target of a direct-answer example (a record without reasoning)."""
    return f"<answer>{scheme.level(label).token}</answer>"


def parse_response(text: object, scheme: LabelScheme, fmt: ResponseFormat | str | None = None) -> ParsedResponse:
    """Parse any model output into (label or None, reasoning, format_ok). Never raises."""
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", errors="replace")
        return _parse(text if isinstance(text, str) else ("" if text is None else str(text)), scheme, fmt)
    except Exception:  # a reward or eval loop must survive any input
        return ParsedResponse(None, "", False)


def _parse(text: str, scheme: LabelScheme, fmt: ResponseFormat | str | None) -> ParsedResponse:
    answers = list(ANSWER_RE.finditer(text))
    thinks = list(THINK_RE.finditer(text))
    label = scheme.label_from_answer(answers[-1].group(1)) if answers else None
    if thinks:
        reasoning = thinks[0].group(1).strip()
    else:
        reasoning = ANSWER_RE.sub("", text).strip()

    format_ok = (
        len(answers) == 1
        and len(thinks) == 1
        and label is not None
        and answers[0].group(1).strip() == scheme.level(label).token
        and bool(reasoning)
        and "<think>" not in reasoning
        and "<answer>" not in reasoning
        and not ANSWER_RE.sub("", THINK_RE.sub("", text)).strip()
    )
    if format_ok and fmt is not None:
        think_first = thinks[0].start() < answers[0].start()
        format_ok = think_first == (ResponseFormat(fmt) is ResponseFormat.THINK_ANSWER)
    return ParsedResponse(label, reasoning, format_ok)
