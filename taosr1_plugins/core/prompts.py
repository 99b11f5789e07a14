"""Chat messages for the relevance task: instructions (compact or with level definitions), then the query and item.

The student's prompt is paid for in every training step and every served pair, so its default is
*compact*: one instruction line naming the levels, the title and a short description (~110 tokens with
SmolLM2's tokenizer, against ~430 for the full form). The level definitions belong in the teacher's prompt
(``teachers.py``), which writes the reasoning the student learns from. ``instruction: full`` keeps the
definitions and rater instructions in every prompt, for larger models or users who want them.

A trained model must be served with the prompt it was trained on, so the style travels with the model:
the training stage writes ``taosr1_prompt.json`` into the model folder and every stage that loads a model
(pass@N, evaluation, GRPO, scoring, the server) reads it back with :func:`prompt_style_of`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.core.terms import compare_terms

PROMPT_FILE = "taosr1_prompt.json"


class PromptStyle(BaseModel):
    """How much of the task and the item the student's prompt spells out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruction: Literal["compact", "full"] = Field(
        "compact", description="compact: one line naming the levels; full: level definitions and rater instructions"
    )
    description_chars: int = Field(
        200, ge=0, description="characters of the item description kept (long HTML descriptions dominate the cost)"
    )
    term_matches: bool = Field(
        False, description="add a line counting the query's terms found in the title and in the description"
    )
    term_share: bool = Field(
        False, description="end the term-match line with the share of query terms found, in a word (all, most, "
        "half, some, none)"
    )

    @model_validator(mode="after")
    def _share_needs_the_line(self) -> PromptStyle:
        if self.term_share and not self.term_matches:
            raise ValueError("term_share words the share on the term-match line: set term_matches: true too")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        data = handler(self)
        # absent while off: styles from before the key existed dump, and so fingerprint, as they did, and a run
        # resumed after the upgrade keeps its trained models
        if not self.term_share:
            data.pop("term_share", None)
        return data


FULL = PromptStyle(instruction="full", description_chars=600)  # the prompt every stage used before compact existed


def render_item(item: Item, description_chars: int = FULL.description_chars) -> str:
    lines = [f"Title: {item.title}"]
    for field in ("brand", "color", "category"):
        value = getattr(item, field)
        if value:
            lines.append(f"{field.capitalize()}: {value}")
    if item.attributes:
        lines.append("Attributes: " + "; ".join(f"{k}: {v}" for k, v in item.attributes.items()))
    if item.description and description_chars:
        text = " ".join(item.description.split())
        lines.append("Description: " + (text[:description_chars] + "…" if len(text) > description_chars else text))
    return "\n".join(lines)


def _shape(fmt: ResponseFormat | str) -> str:
    if ResponseFormat(fmt) is ResponseFormat.ANSWER_FIRST:
        return "first the level inside <answer></answer>, then your reasoning inside <think></think>"
    return "first your reasoning inside <think></think>, then the level inside <answer></answer>"


def system_prompt(
    scheme: LabelScheme, fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER, style: PromptStyle | None = None
) -> str:
    style = style or PromptStyle()
    tokens = ", ".join(level.token for level in scheme.levels)
    if style.instruction == "compact":
        levels = ", ".join(f"{level.token} {level.name}" for level in scheme.levels)
        return f"Rate the item's relevance to the search query: {levels} (best first). Answer with {_shape(fmt)}."
    return (
        "You judge how relevant an e-commerce item is to a search query.\n"
        "Relevance levels, most relevant first:\n"
        f"{scheme.definitions_text()}\n"
        "Reason like a human rater: the query's intent and explicit constraints (product type, brand, "
        "attributes, negations, price intent), the item, a point-by-point comparison, then the level.\n"
        f"Answer with {_shape(fmt)}. The answer is exactly one of: {tokens}."
    )


# share of the query's terms found -> the word the prompt says; "most" starts at 3 of 4, where the lexical
# baselines' fitted cut points fall on both real data sets (0.75 Home Depot, 0.83 Crowdflower)
SHARE_WORDS = ((1.0, "all"), (0.75, "most"), (0.5, "half"), (1e-9, "some"), (0.0, "none"))


def share_word(found: int, total: int) -> str:
    share = found / total if total else 0.0
    return next(word for floor, word in SHARE_WORDS if share >= floor)


def term_match_line(query: str, item: Item, share: bool = False) -> str:
    """Which query terms the title (and else the description) contains, spelled out for the model.

    A 135M student fine-tuned on a few thousand pairs on CPU learns the level's marginal long before it learns to
    compare the query with the title token by token (docs/results.md); stating the lexical evidence in the
    prompt gives it that comparison for free, so its training budget goes to when the evidence misleads. The
    terms are counted as the template teacher's trace counts them (``core.terms``), so prompt and trace agree.

    ``share``: also name the share found in a word. On Home Depot a student that saw only "1 of 2" ranked pairs
    worse than the share itself does as a baseline: dividing two counts is arithmetic a 135M model learns
    slowly, and a word it can map to a level directly."""
    in_title, not_in_title = compare_terms(query, item.title)
    only_description, _ = compare_terms(" ".join(not_in_title), item.description or "")
    total = len(in_title) + len(not_in_title)
    listed = f" ({', '.join(in_title)})" if in_title else ""
    line = f"Query terms in the title: {len(in_title)} of {total}{listed}; only in the description: {len(only_description)}"
    return line + f"; found: {share_word(len(in_title) + len(only_description), total)}" if share else line


def user_prompt(record: Record, style: PromptStyle | None = None) -> str:
    style = style or PromptStyle()
    text = f"Query: {record.query}\n\nItem:\n{render_item(record.item, style.description_chars)}"
    if style.term_matches:
        text += "\n" + term_match_line(record.query, record.item, share=style.term_share)
    return text


def build_messages(
    record: Record,
    scheme: LabelScheme,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    style: PromptStyle | None = None,
) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(scheme, fmt, style)},
        {"role": "user", "content": user_prompt(record, style)},
    ]


def rendering_probe(style: PromptStyle, fmt: ResponseFormat | str) -> list[dict[str, str]]:
    """What one fixed pair renders to with ``style``: part of the training stages' fingerprints, so that a
    change in how prompts are rendered (a new term matcher, say), not only in the style's settings, retrains
    the models that learnt the old text instead of serving them a prompt they never saw."""
    from taosr1_plugins.core.schemes import get_scheme

    probe = Record(id="probe", query="red running shoes for the beach", scheme="esci",
                   item=Item(title="Running shoe, red", description="Light beach sneakers with a grippy sole"))
    return build_messages(probe, get_scheme("esci"), fmt, style)


def write_prompt_style(model_dir: str | Path, style: PromptStyle) -> Path:
    from taosr1_plugins.core.jsonl import atomic_write

    path = Path(model_dir) / PROMPT_FILE
    with atomic_write(path) as fh:
        fh.write(style.model_dump_json(indent=2) + "\n")
    return path


def prompt_style_of(model: str | Path) -> PromptStyle:
    """The prompt style a model was trained with; the default style for a model we did not train (a hub name too)."""
    path = Path(model) / PROMPT_FILE
    if not path.is_file():
        return PromptStyle()
    try:
        return PromptStyle.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        from taosr1_plugins.errors import DataError

        raise DataError(str(path), None, None, f"not a prompt style: {exc}") from exc


def copy_prompt_style(source_model: str | Path, target_model: str | Path) -> None:
    """A stage that trains on from ``source_model`` serves with the same prompt."""
    write_prompt_style(target_model, prompt_style_of(source_model))
