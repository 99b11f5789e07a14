"""The relevance record: one (query, item, graded label) judgement, optionally with a CoT trace."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    description: str | None = None
    brand: str | None = None
    color: str | None = None
    category: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    query: str = Field(min_length=1)
    item: Item
    label: str | None = Field(None, description="a level key of `scheme`; None for unlabelled pairs")
    scheme: str = Field(min_length=1)
    cot: str | None = Field(None, description="reasoning trace (without the answer tag)")
    tags: list[str] = Field(default_factory=list, description="hard-query tags; importers derive them by rule")
    source: str | None = None
