"""The CoT teacher protocol and the retrieval-augmented teacher prompt (TaoSR1 stage 1).

A teacher turns chat requests into response texts; the pipeline in :mod:`taosr1_plugins.cot.generate` parses
them and keeps only label-consistent traces. The teacher prompt is grounded, as in the paper, with the
scheme's level definitions, labelled examples similar to the pair (from a reference pool, see
:mod:`taosr1_plugins.cot.retrieval`), and on retries the human label as a hint.
Framework-free: the built-in teachers live in :mod:`taosr1_plugins.cot.teacher_backends` (registered in
:mod:`taosr1_plugins.builtin.teachers`); a teacher factory may declare ``options_model`` (see
:mod:`taosr1_plugins.core.options`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.prompts import render_item
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.errors import UserError


class TeacherError(UserError, RuntimeError):
    """A teacher could not produce responses (endpoint down after all retries, bad option...)."""


@dataclass(frozen=True)
class TeacherRequest:
    record: Record
    messages: list[dict[str, str]]
    hint_label: str | None = None  # the gold level key, given on retries
    attempt: int = 0  # 0 for the first try
    neighbours: tuple[Record, ...] = field(default=())


@runtime_checkable
class Teacher(Protocol):
    def generate(self, requests: Sequence[TeacherRequest]) -> list[str]:
        """One response text per request, in order."""
        ...



def get_teacher(name: str, **options: Any) -> Teacher:
    """Instantiate a registered teacher by name with its options."""
    from taosr1_plugins import plugins

    return plugins.get("teacher", name)(**options)


# ---------------------------------------------------------------------------------------------------
# The teacher prompt

RATER_STEPS = (
    (
        "1. Query: state the shopper's intent and every explicit constraint (product type, brand, model, size"
        " or quantity, colour, material, compatibility, who it is for, negations such as 'not'/'without', "
        "price intent such as 'cheap' or 'alternative to')."
    ),
    "2. Item: state what the item is and its relevant attributes, from the title and the other fields.",
    (
        "3. Compare point by point: for each constraint, does the item satisfy it, violate it, or is it "
        "impossible to confirm from the item text?"
    ),
    (
        "4. Apply the level definitions to that comparison and name the level that fits, and why the "
        "neighbouring levels do not."
    ),
    "5. Conclude with the level.",
)

NEIGHBOUR_TITLE_CHARS = 200  # examples are for calibration; long titles only cost context


def teacher_system_prompt(
    scheme: LabelScheme, fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER, max_words: int | None = None
) -> str:
    tokens = ", ".join(level.token for level in scheme.levels)
    if ResponseFormat(fmt) is ResponseFormat.ANSWER_FIRST:
        shape = "<answer>LEVEL</answer>\n<think>\nyour reasoning\n</think>"
    else:
        shape = "<think>\nyour reasoning\n</think>\n<answer>LEVEL</answer>"
    return (
        "You are an experienced e-commerce search relevance rater. You judge how relevant an item is to "
        "a shopper's search query, and you write down your reasoning so that a student model can learn "
        "to judge the same way.\n\n"
        f"Relevance levels, most relevant first:\n{scheme.definitions_text()}\n\n"
        "Reason the way a careful human rater does:\n" + "\n".join(RATER_STEPS) + "\n\n"
        "Your reasoning must stand on its own: argue only from the query, the item and the level "
        "definitions. Do not mention the reference examples or any hint you were given.\n"
        + (f"Keep the reasoning under {max_words} words: a small student model learns it.\n" if max_words else "")
        +
        f"Reply in exactly this shape and nothing else:\n{shape}\n"
        f"where LEVEL is exactly one of: {tokens}."
    )


def render_example(record: Record, scheme: LabelScheme) -> str:
    """One labelled reference example, compact: query, item short fields, level."""
    item = record.item
    title = item.title if len(item.title) <= NEIGHBOUR_TITLE_CHARS else item.title[:NEIGHBOUR_TITLE_CHARS] + "…"
    short = Item(title=title, brand=item.brand, color=item.color, category=item.category)
    level = scheme.level(record.label) if record.label is not None else None
    verdict = f"{level.token} ({level.name})" if level else "unlabelled"
    item_text = "\n".join("  " + line for line in render_item(short).splitlines())
    return f"Query: {record.query}\nItem:\n{item_text}\nLevel: {verdict}"


def teacher_user_prompt(
    record: Record,
    scheme: LabelScheme,
    neighbours: Sequence[Record] = (),
    *,
    hint_label: str | None = None,
) -> str:
    parts: list[str] = []
    if neighbours:
        examples = "\n\n".join(
            f"Example {i}:\n{render_example(n, scheme)}" for i, n in enumerate(neighbours, start=1)
        )
        parts.append(
            "Reference examples: similar pairs already judged by human raters. Use them to calibrate how "
            f"the levels are applied.\n\n{examples}"
        )
    parts.append(f"Now judge this pair.\n\nQuery: {record.query}\n\nItem:\n{render_item(record.item)}")
    if hint_label is not None:
        level = scheme.level(hint_label)
        parts.append(
            f"Hint: human raters judged this pair {level.token} ({level.name}). Work out from the query and "
            "the item why that level is right, reason step by step, and answer with "
            f"{level.token}. Do not mention this hint."
        )
    return "\n\n---\n\n".join(parts)


def build_teacher_messages(
    record: Record,
    scheme: LabelScheme,
    neighbours: Sequence[Record] = (),
    *,
    hint_label: str | None = None,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    max_words: int | None = None,
) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": teacher_system_prompt(scheme, fmt, max_words)},
        {
            "role": "user",
            "content": teacher_user_prompt(record, scheme, neighbours, hint_label=hint_label),
        },
    ]


def build_request(
    record: Record,
    scheme: LabelScheme,
    neighbours: Sequence[Record] = (),
    *,
    hint_label: str | None = None,
    attempt: int = 0,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    max_words: int | None = None,
) -> TeacherRequest:
    messages = build_teacher_messages(
        record, scheme, neighbours, hint_label=hint_label, fmt=fmt, max_words=max_words
    )
    return TeacherRequest(
        record=record, messages=messages, hint_label=hint_label, attempt=attempt, neighbours=tuple(neighbours)
    )
