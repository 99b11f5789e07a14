"""Over-recall: the share of pairs labelled irrelevant that a model places in a tier that would be shown.

"Irrelevant" is a set of levels (default: the scheme's lowest); every other tier is shown. A decision
that could not be parsed (evaluation.INVALID) shows nothing. The trade-off curve sweeps one threshold
on the probability of the shown levels (C at the last shown level, when the irrelevant levels are the
bottom ones): precision is the share of shown pairs whose gold level is relevant, recall the share of
relevant pairs shown, and over-recall is one minus the specificity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taosr1_plugins.core.schemes import LabelScheme


def irrelevant_levels(scheme: LabelScheme, levels: Sequence[str] | None = None) -> list[str]:
    """The irrelevant set in scheme order; ValueError unless a non-empty, proper subset of the levels."""
    if not levels:
        return [scheme.keys[-1]]
    unknown = [level for level in levels if level not in scheme.keys]
    if unknown:
        raise ValueError(f"irrelevant levels {unknown} are not levels of {scheme.name!r} ({', '.join(scheme.keys)})")
    chosen = [key for key in scheme.keys if key in set(levels)]
    if len(chosen) == len(scheme.keys):
        raise ValueError("every level is irrelevant: nothing would be shown")
    return chosen


def parse_levels(text: str | None) -> list[str] | None:
    """'C,I' -> ['C', 'I']; None or blank -> None (the default set)."""
    if text is None or not text.strip():
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def over_recall(gold: Sequence[str], predicted: Sequence[str | None], scheme: LabelScheme,
                irrelevant: Sequence[str]) -> float | None:
    """None when no pair is labelled irrelevant (nothing to let through)."""
    bad = set(irrelevant)
    shown = set(scheme.keys) - bad
    decisions = [p for g, p in zip(gold, predicted) if g in bad]
    if not decisions:
        return None
    return sum(p in shown for p in decisions) / len(decisions)


def over_recall_from_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], scheme: LabelScheme,
                               irrelevant: Sequence[str]) -> float | None:
    """The same from a confusion matrix (rows gold, columns predicted), e.g. a baseline's stored metrics."""
    bad = set(irrelevant)
    shown = set(scheme.keys) - bad
    rows = [row for label, row in zip(labels, confusion) if label in bad]
    total = sum(sum(row) for row in rows)
    if not total:
        return None
    return sum(count for row in rows for label, count in zip(labels, row) if label in shown) / total


@dataclass
class TradeoffPoint:
    threshold: float  # shown when p(shown levels) >= threshold
    precision: float
    recall: float
    over_recall: float


def tradeoff_curve(probs: Sequence[Sequence[float]], gold: Sequence[str], scheme: LabelScheme,
                   irrelevant: Sequence[str]) -> list[TradeoffPoint]:
    """One point per distinct value of p(shown levels), from showing everything to showing the most sure."""
    bad = set(irrelevant)
    shown_index = [i for i, key in enumerate(scheme.keys) if key not in bad]
    mass = [sum(p[i] for i in shown_index) for p in probs]
    relevant = [g not in bad for g in gold]
    n_relevant, n_irrelevant = sum(relevant), len(gold) - sum(relevant)
    points = []
    for t in sorted(set(mass)):
        shown = [m >= t for m in mass]
        true_shown = sum(s and r for s, r in zip(shown, relevant))
        false_shown = sum(s and not r for s, r in zip(shown, relevant))
        points.append(TradeoffPoint(
            threshold=t,
            precision=true_shown / (true_shown + false_shown) if true_shown + false_shown else 1.0,
            recall=true_shown / n_relevant if n_relevant else 0.0,
            over_recall=false_shown / n_irrelevant if n_irrelevant else 0.0,
        ))
    return points


def shown_precision_recall(gold: Sequence[str], predicted: Sequence[str | None], scheme: LabelScheme,
                           irrelevant: Sequence[str]) -> tuple[float, float]:
    """Precision and recall of a set of tier decisions, as a point beside the curve."""
    bad = set(irrelevant)
    shown_levels = set(scheme.keys) - bad
    shown = [p in shown_levels for p in predicted]
    relevant = [g not in bad for g in gold]
    true_shown = sum(s and r for s, r in zip(shown, relevant))
    return (true_shown / sum(shown) if any(shown) else 1.0, true_shown / sum(relevant) if any(relevant) else 0.0)
