"""Group splits: every record of a group (e.g. one query) lands in the same split.

Splitting by row would put the same query in train and test and overstate test scores, since a model
learns per-query quirks of the labels. Assignment depends only on the set of groups, the ratios and the
seed, never on the order of records in the file.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taosr1_plugins.core.records import Record

T = TypeVar("T")

GROUP_KEYS: dict[str, Callable[[Record], str]] = {
    # Case and spacing variants of one query are one query for leakage purposes.
    "query": lambda record: " ".join(record.query.casefold().split()),
    "id": lambda record: record.id,
}


def check_ratios(ratios: Sequence[float], what: str = "ratios") -> list[float]:
    """Finite, non-negative and not all zero (they are normalised later); else ValueError."""
    ratios = list(ratios)
    if not ratios:
        raise ValueError(f"{what}: need at least one ratio")
    if any(not math.isfinite(r) or r < 0 for r in ratios):
        raise ValueError(f"{what} must be finite numbers >= 0, got {ratios}")
    if sum(ratios) <= 0 or not math.isfinite(sum(ratios)):
        raise ValueError(f"{what} must not be all zero, got {ratios}")
    return ratios


class SplitSettings(BaseModel):
    """The split stage's settings: the run config's `split:` section, and the defaults and help of `taosr1 data split`."""

    model_config = ConfigDict(extra="forbid")

    by: Literal["query", "id"] = Field("query", description="Keep each group in one split.")
    ratios: tuple[float, float, float] = Field((0.7, 0.1, 0.2), description="Relative split sizes, in records.")
    max_pairs: dict[Literal["train", "dev", "test"], Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="keep at most this many pairs of a split (a seeded random sample, after the split by query)",
    )

    @field_validator("ratios")
    @classmethod
    def _finite_ratios(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        check_ratios(ratios)
        return ratios


def parse_ratios(text: str) -> list[float]:
    """'0.8,0.1,0.1' -> [0.8, 0.1, 0.1]."""
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"ratios must be comma-separated numbers, got {text!r}") from None
    try:
        return check_ratios(ratios)
    except ValueError:
        raise ValueError(f"ratios must be finite, >= 0 and not all zero, got {text!r}") from None


def split_groups(items: Sequence[T], key: Callable[[T], str], ratios: Sequence[float], seed: int = 0) -> list[list[T]]:
    """Split ``items`` into len(ratios) lists with whole groups, sizes close to the ratios (in items).

    Groups are sorted, shuffled with ``seed``, then laid end to end; a group goes to the split whose
    share of the line holds the group's midpoint. Items keep their input order inside each split.
    """
    check_ratios(ratios)
    sizes: dict[str, int] = {}
    for item in items:
        group = key(item)
        sizes[group] = sizes.get(group, 0) + 1
    groups = sorted(sizes)
    random.Random(seed).shuffle(groups)

    total, scale = len(items), sum(ratios)
    bounds, running = [], 0.0
    for ratio in ratios:
        running += ratio
        bounds.append(total * running / scale)

    split_of: dict[str, int] = {}
    position = 0
    for group in groups:
        midpoint = position + sizes[group] / 2
        split_of[group] = next((i for i, bound in enumerate(bounds) if midpoint < bound), len(bounds) - 1)
        position += sizes[group]

    splits: list[list[T]] = [[] for _ in ratios]
    for item in items:
        splits[split_of[key(item)]].append(item)
    return splits


def sample_items(items: Sequence[T], limit: int | None, seed: int = 0) -> list[T]:
    """At most ``limit`` items drawn at random with ``seed``, in their input order (all of them for None)."""
    if limit is None or limit >= len(items):
        return list(items)
    keep = set(random.Random(seed).sample(range(len(items)), limit))
    return [item for i, item in enumerate(items) if i in keep]


def empty_splits(sizes: dict[str, int], ratios: Sequence[float], groups: int, by: str) -> dict[str, str]:
    """split name -> a warning, for each split that was meant to hold records (ratio > 0) and got none.

    Whole groups go to one split each, so few groups of many records can leave a small split empty: the split
    succeeds and a later step (fitting thresholds on dev, a test report) has nothing to work on."""
    total = sum(sizes.values())
    scale = sum(ratios)
    warnings = {}
    for (name, size), ratio in zip(sizes.items(), ratios):
        if size == 0 and ratio > 0 and total:
            warnings[name] = (
                f"split '{name}' is empty: its ratio {ratio:g} of {total} records is {total * ratio / scale:.1f} "
                f"records, but the {groups} {by} groups go whole to one split each and none fell into its share; "
                f"more {by} groups, a larger ratio for '{name}', or splitting by id would fill it"
            )
    return warnings
