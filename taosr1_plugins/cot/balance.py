"""Level-balanced SFT examples: how many of each relevance level the student trains on.

Relevance data is skewed (Crowdflower is 60% level 4): trained on it as it comes, a small model learns to
answer the majority level whatever the pair. ``equal`` gives every level the same share, ``sqrt`` a share
proportional to the square root of its count (between the data's own skew and equal), ``none`` keeps the
data's own proportions. A level with fewer records than its share repeats them (each record once before any
twice), so ``examples`` can exceed the data when one pass over rare levels is not enough.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from taosr1_plugins.core.records import Record

Balance = Literal["none", "sqrt", "equal"]


def level_shares(counts: dict[str, int], balance: Balance) -> dict[str, float]:
    weight = {"none": float, "sqrt": math.sqrt, "equal": lambda count: 1.0}[balance]
    weights = {level: weight(count) for level, count in counts.items() if count}
    total = sum(weights.values())
    return {level: w / total for level, w in weights.items()}


def _largest_remainder(shares: dict[str, float], total: int) -> dict[str, int]:
    exact = {level: share * total for level, share in shares.items()}
    counts = {level: math.floor(value) for level, value in exact.items()}
    for level in sorted(exact, key=lambda lv: counts[lv] - exact[lv])[: total - sum(counts.values())]:
        counts[level] += 1
    return counts


def balanced_examples(
    records: Sequence[Record], examples: int | None = None, balance: Balance = "none", seed: int = 0
) -> list[Record]:
    """``examples`` labelled records (all of them for None) with level shares set by ``balance``, shuffled with ``seed``.

    With ``balance: none`` and no ``examples`` this is every labelled record, in a seeded order.
    """
    by_level: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.label is not None:
            by_level[record.label].append(record)
    if not by_level:
        return []
    total = sum(len(group) for group in by_level.values())
    wanted = _largest_remainder(level_shares({lv: len(g) for lv, g in by_level.items()}, balance), examples or total)
    rng = random.Random(seed)
    chosen: list[Record] = []
    for level in sorted(by_level):
        group, picks = by_level[level], []
        while len(picks) < wanted[level]:
            # one whole pass over a level before any of its records repeats
            picks.extend(rng.sample(group, len(group))[: wanted[level] - len(picks)])
        chosen.extend(picks)
    rng.shuffle(chosen)
    return chosen
