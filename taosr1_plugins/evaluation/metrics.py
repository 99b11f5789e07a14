"""Relevance metrics from scikit-learn: macro-F1 (headline), accuracy, per-level P/R/F1, QWK, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from taosr1_plugins.core.schemes import LabelScheme

INVALID = "<invalid>"  # a response whose label could not be parsed: wrong for every gold level


@dataclass
class Metrics:
    n: int
    macro_f1: float
    accuracy: float
    qwk: float
    format_ok_rate: float
    invalid_rate: float
    per_level: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    confusion_labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def compute_metrics(
    gold: Sequence[str],
    predicted: Sequence[str | None],
    scheme: LabelScheme,
    format_ok: Sequence[bool] | None = None,
) -> Metrics:
    """Unparseable predictions (None) count as errors; for QWK they are scored as the least relevant level."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no examples to evaluate")
    keys = scheme.keys
    pred = [p if p in keys else INVALID for p in predicted]
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=keys, average=None, zero_division=0
    )
    # Macro-F1 over the levels present in gold or predictions, as sklearn's default would, but never
    # counting the invalid pseudo-label as a level.
    present = [i for i, k in enumerate(keys) if support[i] > 0 or k in pred]
    macro_f1 = float(sum(f1[i] for i in present) / len(present)) if present else 0.0
    lowest = keys[-1]
    ranks_gold = [scheme.rank(g) for g in gold]
    ranks_pred = [scheme.rank(p if p in keys else lowest) for p in pred]
    qwk = float(cohen_kappa_score(ranks_gold, ranks_pred, weights="quadratic", labels=list(range(len(keys)))))
    labels = keys + ([INVALID] if INVALID in pred else [])
    return Metrics(
        n=len(gold),
        macro_f1=macro_f1,
        accuracy=float(accuracy_score(gold, pred)),
        qwk=0.0 if qwk != qwk else qwk,  # NaN when one side is constant
        format_ok_rate=float(sum(format_ok) / len(format_ok)) if format_ok is not None else float("nan"),
        invalid_rate=pred.count(INVALID) / len(pred),
        per_level={
            k: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, k in enumerate(keys)
        },
        confusion=confusion_matrix(gold, pred, labels=labels).tolist(),
        confusion_labels=labels,
    )


def metrics_table(rows: dict[str, Metrics], scheme: LabelScheme, title: str = "evaluation"):
    """A rich table with one row per evaluated model/stage."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("model", "n", "macro-F1", "accuracy", "QWK", "format ok", "invalid"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for level in scheme.levels:
        table.add_column(f"F1 {level.token}", justify="right")
    for name, m in rows.items():
        table.add_row(
            name,
            str(m.n),
            f"{m.macro_f1:.3f}",
            f"{m.accuracy:.3f}",
            f"{m.qwk:.3f}",
            "-" if m.format_ok_rate != m.format_ok_rate else f"{m.format_ok_rate:.0%}",  # NaN: not generated
            f"{m.invalid_rate:.0%}",
            *(f"{m.per_level[level.key]['f1']:.3f}" for level in scheme.levels),
        )
    return table


def compute_slices(
    gold: Sequence[str],
    predicted: Sequence[str | None],
    tags: Sequence[Sequence[str]],
    scheme: LabelScheme,
    slice_names: Sequence[str] | None = None,
) -> dict[str, Metrics]:
    """The same metrics on each tag slice (pairs carrying that tag); slices with no pairs are left out.

    ``slice_names`` defaults to every tag present. Our tags are rule-derived (``tags.RULES``), not human
    annotations, so slice figures describe those rules' slices.
    """
    if not (len(gold) == len(predicted) == len(tags)):
        raise ValueError(f"{len(gold)} gold labels, {len(predicted)} predictions and {len(tags)} tag lists")
    names = list(slice_names) if slice_names is not None else sorted({t for pair_tags in tags for t in pair_tags})
    slices: dict[str, Metrics] = {}
    for name in names:
        index = [i for i, pair_tags in enumerate(tags) if name in pair_tags]
        if index:
            slices[name] = compute_metrics([gold[i] for i in index], [predicted[i] for i in index], scheme)
    return slices
