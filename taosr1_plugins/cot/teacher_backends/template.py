"""The `template` teacher: deterministic rater-style reasoning built from the record's fields and gold label.

This is the **offline bootstrap**, not a substitute for a strong teacher LLM. It lets the whole
pipeline (CoT SFT data, exports, training smoke runs) work without any model or network: it states the
query's constraints, the item's attributes, which query terms the item matches and misses, the level
definition that applies, and concludes with the gold label. Its reasoning is faithful to the fields it
reads but knows nothing the fields do not say, so the label is asserted from the human judgement, not
derived. Every response parses, and its label always equals the gold label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.core.formats import ResponseFormat, render_response
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, scheme_of
from taosr1_plugins.core.terms import compare_terms
from taosr1_plugins.cot.teachers import TeacherError, TeacherRequest
from taosr1_plugins.data.tags import RULES

TAG_RE = re.compile(r"</?(think|answer)>", re.IGNORECASE)
NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)?\s*(?:[a-z%\"']{1,6}\b)?", re.IGNORECASE)
MAX_TERMS = 12
MAX_ATTRIBUTES = 6


class TemplateTeacherOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ResponseFormat = ResponseFormat.THINK_ANSWER
    style: Literal["full", "concise"] = Field(
        "full", description="concise: one line of term matches and the level (~30 tokens instead of ~190)"
    )


def _item_text(record: Record) -> str:
    item = record.item
    fields = [item.title, item.brand or "", item.color or "", item.category or ""]
    fields += [f"{k} {v}" for k, v in item.attributes.items()]
    return " ".join(fields)


def _quote(values: Sequence[str]) -> str:
    shown = [f"'{v}'" for v in values[:MAX_TERMS]]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _clean(text: str) -> str:
    # Item text must never be able to forge the response's tags.
    return TAG_RE.sub("", " ".join(text.split()))


def query_constraints(record: Record) -> list[str]:
    query = record.query
    found = []
    brand = record.item.brand
    if brand and brand.strip() and brand.casefold() in query.casefold():
        found.append(f"the brand '{_clean(brand)}'")
    numbers = [m.group(0).strip() for m in NUMBER_RE.finditer(query)]
    if numbers:
        found.append("the size, quantity or model number " + _quote(numbers))
    color = record.item.color
    if color and color.strip() and color.casefold() in query.casefold():
        found.append(f"the colour '{_clean(color)}'")
    if RULES["negation"].search(query):
        found.append("a negation: something the shopper does not want")
    if RULES["alternative"].search(query):
        found.append("a price or alternative intent")
    if RULES["qa"].search(query):
        found.append("a question the item should answer")
    if RULES["knowledge"].search(query):
        found.append("who or what the item must suit (target user or compatibility), which needs product knowledge")
    return found


def template_reasoning(record: Record, scheme: LabelScheme) -> str:
    if record.label is None:
        raise TeacherError(f"record {record.id!r} has no gold label; the template teacher needs one")
    level = scheme.level(record.label)
    item = record.item
    query = _clean(record.query)

    constraints = query_constraints(record)
    lines = [f"Query: the shopper searched for \"{query}\"."]
    if constraints:
        lines.append("Explicit constraints in the query: " + "; ".join(constraints) + ".")
    else:
        lines.append("The query states no explicit brand, size, colour, negation or price constraint; its core is the product it names.")

    described = [f"Item: \"{_clean(item.title)}\""]
    for name in ("brand", "color", "category"):
        value = getattr(item, name)
        if value and value.strip():
            described.append(f"{'colour' if name == 'color' else name} {_clean(value)}")
    attributes = [f"{_clean(k)}: {_clean(v)}" for k, v in list(item.attributes.items())[:MAX_ATTRIBUTES]]
    if attributes:
        described.append("attributes " + "; ".join(attributes))
    lines.append(", ".join(described) + ".")

    matched, missing = compare_terms(record.query, _item_text(record))
    if matched or missing:
        total = len(matched) + len(missing)
        comparison = f"Comparison: {len(matched)} of {total} query terms appear in the item"
        if matched:
            comparison += f" (matched: {_quote(matched)})"
        if missing:
            comparison += f"; not found in the item: {_quote(missing)}"
        lines.append(comparison + ".")
    else:
        lines.append("Comparison: the query has no content words to match against the item.")

    rank = scheme.rank(level.key)
    top = len(scheme.levels) - 1
    if rank == top:
        verdict = "The item satisfies what the query asks for"
        verdict += "; the unmatched terms are not decisive." if missing else "."
    elif rank == 0:
        verdict = "The item does not serve the query's intent"
        verdict += ", despite the shared terms." if matched else "."
    else:
        verdict = "The item is related to the query but falls short of the best level on some aspect"
        verdict += f" (see {_quote(missing)})." if missing else "."
    lines.append(verdict)
    lines.append(f"Level definitions: {level.token} ({level.name}) applies: {level.definition}")
    lines.append(f"Conclusion: {level.name}, level {level.token}.")
    return "\n".join(lines)


CONCISE_TERMS = 4


def concise_reasoning(record: Record, scheme: LabelScheme) -> str:
    """The same facts as :func:`template_reasoning`, in one line: a student pays for every trace token."""
    if record.label is None:
        raise TeacherError(f"record {record.id!r} has no gold label; the template teacher needs one")
    level = scheme.level(record.label)
    matched, missing = compare_terms(record.query, _item_text(record))
    total = len(matched) + len(missing)
    parts = [f"{len(matched)} of {total} query terms in the item" if total else "no content words in the query"]
    if missing:
        parts.append("missing " + ", ".join(f"'{_clean(t)}'" for t in missing[:CONCISE_TERMS]))
    parts += query_constraints(record)[:1]
    return "; ".join(parts) + f". {level.name}."


class TemplateTeacher:
    """Ignores the prompt; reads each request's record (see the module docstring)."""

    options_model: ClassVar[type[BaseModel]] = TemplateTeacherOptions

    def __init__(self, **options):
        self.options = TemplateTeacherOptions(**options)
        self._schemes: dict[str, LabelScheme] = {}

    def _scheme(self, record: Record) -> LabelScheme:
        if record.scheme not in self._schemes:
            self._schemes[record.scheme] = scheme_of(record)
        return self._schemes[record.scheme]

    def generate(self, requests: Sequence[TeacherRequest]) -> list[str]:
        responses = []
        for request in requests:
            record = request.record
            scheme = self._scheme(record)
            reasoning = (concise_reasoning if self.options.style == "concise" else template_reasoning)(record, scheme)
            responses.append(render_response(reasoning, record.label, scheme, self.options.format))
        return responses
