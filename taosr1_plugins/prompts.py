"""Chat messages for the relevance task: instructions and level definitions, then the query and item."""

from __future__ import annotations

from .formats import ResponseFormat
from .records import Item, Record
from .schemes import LabelScheme

DESCRIPTION_CHARS = 600  # long HTML descriptions would dominate a small model's context


def render_item(item: Item) -> str:
    lines = [f"Title: {item.title}"]
    for field in ("brand", "color", "category"):
        value = getattr(item, field)
        if value:
            lines.append(f"{field.capitalize()}: {value}")
    if item.attributes:
        lines.append("Attributes: " + "; ".join(f"{k}: {v}" for k, v in item.attributes.items()))
    if item.description:
        text = " ".join(item.description.split())
        lines.append("Description: " + (text[:DESCRIPTION_CHARS] + "…" if len(text) > DESCRIPTION_CHARS else text))
    return "\n".join(lines)


def system_prompt(scheme: LabelScheme, fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER) -> str:
    tokens = ", ".join(level.token for level in scheme.levels)
    if ResponseFormat(fmt) is ResponseFormat.ANSWER_FIRST:
        shape = "first the level inside <answer></answer>, then your reasoning inside <think></think>"
    else:
        shape = "first your reasoning inside <think></think>, then the level inside <answer></answer>"
    return (
        "You judge how relevant an e-commerce item is to a search query.\n"
        "Relevance levels, most relevant first:\n"
        f"{scheme.definitions_text()}\n"
        "Reason like a human rater: the query's intent and explicit constraints (product type, brand, "
        "attributes, negations, price intent), the item, a point-by-point comparison, then the level.\n"
        f"Answer with {shape}. The answer is exactly one of: {tokens}."
    )


def user_prompt(record: Record) -> str:
    return f"Query: {record.query}\n\nItem:\n{render_item(record.item)}"


def build_messages(
    record: Record, scheme: LabelScheme, fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER
) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(scheme, fmt)},
        {"role": "user", "content": user_prompt(record)},
    ]
