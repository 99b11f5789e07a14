"""Response formats (think-then-answer, answer-first) and the one parser for model output."""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple

from taosr1_plugins.core.schemes import LabelScheme

# What a tag pair means, as a pattern; the parser itself scans with str.find (see _tag_spans).
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


class _Span(NamedTuple):
    start: int  # of the opening tag
    inner_start: int
    inner_end: int
    end: int  # after the closing tag

    def inner(self, text: str) -> str:
        return text[self.inner_start : self.inner_end]


def _tag_spans(text: str, open_tag: str, close_tag: str) -> list[_Span]:
    """The matches of ``<open>(.*?)<close>`` as ``re.finditer`` finds them, in linear time.

    The lazy regex, tried at every opening tag, scans to the end of the text each time no closing tag
    follows: quadratic in a response of repeated ``<answer>``. Once no closing tag follows one opening
    tag, none follows a later one either, so the scan stops there.
    """
    spans, pos = [], 0
    while (start := text.find(open_tag, pos)) >= 0:
        close = text.find(close_tag, start + len(open_tag))
        if close < 0:
            break
        spans.append(_Span(start, start + len(open_tag), close, close + len(close_tag)))
        pos = close + len(close_tag)
    return spans


def _without(text: str, spans: list[_Span]) -> str:
    pieces, pos = [], 0
    for span in spans:
        pieces.append(text[pos : span.start])
        pos = span.end
    pieces.append(text[pos:])
    return "".join(pieces)


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
    answers = _tag_spans(text, "<answer>", "</answer>")
    thinks = _tag_spans(text, "<think>", "</think>")
    label = scheme.label_from_answer(answers[-1].inner(text)) if answers else None
    if thinks:
        reasoning = thinks[0].inner(text).strip()
    else:
        reasoning = _without(text, answers).strip()

    def outside_tags() -> str:
        rest = _without(text, thinks)
        return _without(rest, _tag_spans(rest, "<answer>", "</answer>"))

    format_ok = (
        len(answers) == 1
        and len(thinks) == 1
        and label is not None
        and answers[0].inner(text).strip() == scheme.level(label).token
        and bool(reasoning)
        and "<think>" not in reasoning
        and "<answer>" not in reasoning
        and not outside_tags().strip()
    )
    if format_ok and fmt is not None:
        think_first = thinks[0].start < answers[0].start
        format_ok = think_first == (ResponseFormat(fmt) is ResponseFormat.THINK_ANSWER)
    return ParsedResponse(label, reasoning, format_ok)
