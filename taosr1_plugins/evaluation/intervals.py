"""How sure a row of the ablation table is: 95% bootstrap intervals of macro-F1 and QWK, resampled by query.

Pairs of one query are not independent (one query's items share its wording, and a model that misreads the
query misreads them all), so the bootstrap draws whole queries with replacement. Every row is scored on the
same draws, which makes the difference of two rows paired: a stage "adds" only where the interval of its
difference with the row before it excludes 0. The metrics are computed from confusion matrices with numpy,
the way ``evaluation/metrics.py`` computes them with scikit-learn (a test holds the two equal), so a thousand
draws of a dozen rows take a second or two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


def confusion(gold: np.ndarray, predicted: np.ndarray, levels: int) -> np.ndarray:
    """gold x predicted counts; level indices (0 = most relevant), ``predicted`` -1 for an unparseable answer."""
    # an unparseable answer is a miss for F1 (column `levels`), and the least relevant level for QWK (as in
    # metrics.compute_metrics)
    column = np.where(predicted < 0, levels, predicted)
    return np.bincount(gold * (levels + 1) + column, minlength=levels * (levels + 1)).reshape(levels, levels + 1)


def macro_f1(counts: np.ndarray) -> float:
    """Macro-F1 over the levels present in gold or predictions (metrics.compute_metrics' rule)."""
    levels = counts.shape[0]
    hits = np.diag(counts[:, :levels]).astype(float)
    gold, predicted = counts.sum(axis=1), counts[:, :levels].sum(axis=0)
    denominator = gold + predicted
    f1 = np.divide(2 * hits, denominator, out=np.zeros(levels), where=denominator > 0)
    present = denominator > 0
    return float(f1[present].mean()) if present.any() else 0.0


def qwk(counts: np.ndarray) -> float:
    """Quadratic-weighted kappa, an unparseable answer counted as the least relevant level; 0 where undefined."""
    levels = counts.shape[0]
    observed = counts[:, :levels].astype(float)
    observed[:, levels - 1] += counts[:, levels]
    total = observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    index = np.arange(levels)
    weights = (index[:, None] - index[None, :]) ** 2
    denominator = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / denominator) if denominator > 0 else 0.0


METRICS = {"macro_f1": macro_f1, "qwk": qwk}


@dataclass(frozen=True)
class Interval:
    value: float  # on the whole test split
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [round(self.value, 4), round(self.low, 4), round(self.high, 4)]


@dataclass(frozen=True)
class Difference:
    """``second`` minus ``first`` on the same draws of queries."""

    first: str
    second: str
    metrics: dict[str, Interval]

    @property
    def verdict(self) -> str:
        """What the macro-F1 difference says: adds (interval above 0), worse (below 0) or no difference."""
        interval = self.metrics["macro_f1"]
        return "adds" if interval.low > 0 else "worse" if interval.high < 0 else "no difference"

    def to_dict(self) -> dict:
        return {"first": self.first, "second": self.second, "verdict": self.verdict,
                **{name: interval.to_list() for name, interval in self.metrics.items()}}


@dataclass(frozen=True)
class Bootstrap:
    rows: dict[str, dict[str, Interval]]  # row name -> metric -> interval
    differences: list[Difference]
    resamples: int
    queries: int


def bootstrap_by_query(
    queries: Sequence[str],
    gold: Sequence[int],
    predicted: Mapping[str, Sequence[int]],
    levels: int,
    compare: Sequence[tuple[str, str]] = (),
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Bootstrap:
    """Intervals of every row of ``predicted`` (row name -> level index per pair, aligned with ``gold`` and
    ``queries``) and of the paired differences ``compare`` (first, second)."""
    gold_array = np.asarray(gold)
    rows = {name: np.asarray(values) for name, values in predicted.items()}
    for name, values in rows.items():
        if values.shape != gold_array.shape:
            raise ValueError(f"row {name!r}: {values.size} predictions for {gold_array.size} pairs")
    _, query_of = np.unique(np.asarray(queries, dtype=object).astype(str), return_inverse=True)
    members = [np.flatnonzero(query_of == q) for q in range(query_of.max() + 1)] if len(gold_array) else []
    rng = np.random.default_rng(seed)
    draws = {name: {metric: np.empty(resamples) for metric in METRICS} for name in rows}
    for b in range(resamples):
        index = np.concatenate([members[q] for q in rng.integers(0, len(members), len(members))])
        for name, values in rows.items():
            counts = confusion(gold_array[index], values[index], levels)
            for metric, compute in METRICS.items():
                draws[name][metric][b] = compute(counts)

    tail = (1 - LEVEL) / 2 * 100

    def interval(value: float, samples: np.ndarray) -> Interval:
        low, high = np.percentile(samples, [tail, 100 - tail])
        return Interval(value, float(low), float(high))

    whole = {name: {metric: compute(confusion(gold_array, values, levels)) for metric, compute in METRICS.items()}
             for name, values in rows.items()}
    intervals = {name: {metric: interval(whole[name][metric], draws[name][metric]) for metric in METRICS} for name in rows}
    differences = [
        Difference(first, second, {metric: interval(whole[second][metric] - whole[first][metric],
                                                     draws[second][metric] - draws[first][metric]) for metric in METRICS})
        for first, second in compare if first in rows and second in rows
    ]
    return Bootstrap(intervals, differences, resamples, len(members))
