"""The relevance record: one (query, item, graded label) judgement, optionally with a CoT trace."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _not_blank(value: str) -> str:
    # Importers strip text; a hand-written file must not slip a blank query or title past the same rule.
    if not value.strip():
        raise ValueError("empty or only whitespace")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text = Field(min_length=1)
    description: str | None = None
    brand: str | None = None
    color: str | None = None
    category: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Text = Field(min_length=1)
    query: Text = Field(min_length=1)
    item: Item
    label: str | None = Field(None, description="a level key of `scheme`; None for unlabelled pairs")
    scheme: Text = Field(min_length=1)
    # A YAML scheme is registered nowhere: its records carry the file, so every later command (and the records
    # it writes) reads the scheme the data was imported with. Absent for registered schemes.
    scheme_file: str | None = Field(None, description="the YAML file (absolute path) of `scheme`; None: registered")
    cot: str | None = Field(None, description="reasoning trace (without the answer tag)")
    tags: list[str] = Field(default_factory=list, description="hard-query tags; importers derive them by rule")
    source: str | None = None
