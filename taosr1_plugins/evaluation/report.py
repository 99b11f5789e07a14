"""`taosr1 eval`: metrics of one or more score files and a self-contained HTML report with plots.

Metrics come from scikit-learn through ``evaluation.compute_metrics`` / ``compute_slices``. Decisions are
CumPT tiers when a cumpt.json is given (argmax is reported beside them), else argmax; a calibration in
the cumpt.json is applied first. Beside macro-F1: the ranking view (NDCG per query, ranking.py),
over-recall of irrelevant pairs with its precision/recall trade-off (over_recall.py), ECE before and
after calibration, and tier stability between consecutive stages (stability.py). Plots are rendered
with matplotlib's Agg backend and embedded as base64 PNGs, so the report is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taosr1_plugins.deploy.calibration import CumptFile, load_cumpt
from taosr1_plugins.deploy.cumpt import argmax_tier
from taosr1_plugins.errors import DataError
from taosr1_plugins.evaluation.metrics import Metrics, compute_metrics, compute_slices
from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.evaluation.over_recall import TradeoffPoint, irrelevant_levels, over_recall, shown_precision_recall, tradeoff_curve
from taosr1_plugins.evaluation.ranking import RankingMetrics, ranking_metrics, tiered_score
from taosr1_plugins.evaluation.reliability import confidence_and_correct, expected_calibration_error, reliability_bins
from taosr1_plugins.deploy.scoring import ScoreSet, read_scores
from taosr1_plugins.evaluation.stability import TierStability, tier_stability
from taosr1_plugins.data.tags import RULES

SLICES = tuple(RULES)
STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}figure{display:inline-block}</style>"
)  # negation, alternative, qa, knowledge


@dataclass
class StageResult:
    name: str
    scores: ScoreSet
    decision: str  # "cumpt" or "argmax"
    predicted: list[str]
    metrics: Metrics
    argmax_metrics: Metrics
    slices: dict[str, Metrics]
    ranking: RankingMetrics
    irrelevant: list[str]
    over_recall: float | None
    decision_probs: list[list[float]]  # what the tiers were read from: calibrated when the cumpt.json says so
    ece: float  # of the model's own distribution
    ece_calibrated: float | None = None  # after the cumpt.json's calibration; None without one
    uncalibrated_metrics: Metrics | None = None  # CumPT fitted on the raw distribution, when recorded


def evaluate_scores(scores: ScoreSet, cumpt: CumptFile | None, name: str | None = None, *,
                    irrelevant: Sequence[str] | None = None, queries: Mapping[str, str] | None = None) -> StageResult:
    """``queries``: id -> query for rows that do not carry their query (score files from before it was kept)."""
    scheme = scores.scheme
    rows = scores.labelled
    if not rows:
        raise DataError(str(scores.path), None, "gold", "no labelled rows to evaluate")
    if cumpt is not None and cumpt.scheme != scheme.name:
        raise DataError(str(scores.path), None, "scheme", f"{scheme.name!r} but the CumPT file is for {cumpt.scheme!r}")
    try:
        bad = irrelevant_levels(scheme, irrelevant)
    except ValueError as exc:
        raise DataError(None, None, "irrelevant", str(exc)) from exc
    raw = [[row.probs[key] for key in scheme.keys] for row in rows]
    gold = [row.gold for row in rows]
    gold_index = [scheme.keys.index(g) for g in gold]
    argmax = [scheme.keys[argmax_tier(p)] for p in raw]
    partition = cumpt.to_cumpt() if cumpt is not None else None
    if partition is not None:
        probs = [partition.calibrated(p) for p in raw]
        tiers = [partition.tier_index(p) for p in raw]
    else:
        probs, tiers = raw, [argmax_tier(p) for p in raw]
    predicted = [scheme.keys[t] for t in tiers]
    uncalibrated = cumpt.uncalibrated_cumpt() if cumpt is not None else None
    queries = queries or {}
    ranked = [(row.query or queries.get(row.id), g, tiered_score(t, p)) for row, g, t, p in zip(rows, gold_index, tiers, probs)]
    ranked = [entry for entry in ranked if entry[0] is not None]
    return StageResult(
        name=name or Path(scores.path).name,
        scores=scores,
        decision="cumpt" if cumpt is not None else "argmax",
        predicted=predicted,
        metrics=compute_metrics(gold, predicted, scheme),
        argmax_metrics=compute_metrics(gold, argmax, scheme),
        slices=compute_slices(gold, predicted, [row.tags for row in rows], scheme, SLICES),
        ranking=ranking_metrics(*zip(*ranked), len(scheme.keys)) if ranked else RankingMetrics(None, None, 0, 0),
        irrelevant=bad,
        over_recall=over_recall(gold, predicted, scheme, bad),
        decision_probs=probs,
        ece=expected_calibration_error(*confidence_and_correct(raw, gold_index)),
        ece_calibrated=(expected_calibration_error(*confidence_and_correct(probs, gold_index))
                        if partition is not None and partition.calibration is not None else None),
        uncalibrated_metrics=(compute_metrics(gold, [uncalibrated.tier(p) for p in raw], scheme)
                              if uncalibrated is not None else None),
    )


def stage_stability(stages: Sequence[StageResult], cumpt: CumptFile | None) -> list[TierStability]:
    """Tier changes between each stage and the next, on the pairs both scored (the same split)."""
    partition = cumpt.to_cumpt() if cumpt is not None else None
    out = []
    for first, second in zip(stages, stages[1:]):
        if {row.id for row in first.scores.rows} == {row.id for row in second.scores.rows}:
            out.append(tier_stability(first.scores, second.scores, partition, (first.name, second.name)))
    return out


# --- plots -------------------------------------------------------------------------------------------------


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(stage: StageResult) -> str:
    plt = pyplot()
    m = stage.metrics
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(m.confusion, cmap="Blues")
    ax.set_xticks(range(len(m.confusion_labels)), m.confusion_labels)
    ax.set_yticks(range(len(m.confusion_labels)), m.confusion_labels)
    ax.set_xlabel(f"predicted ({stage.decision})")
    ax.set_ylabel("gold")
    for i, row in enumerate(m.confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=9)
    ax.set_title(f"confusion: {stage.name}")
    return _png(fig)


def _confidence(stage: StageResult) -> tuple[list[float], list[bool]]:
    keys = stage.scores.scheme.keys
    rows = stage.scores.labelled
    return confidence_and_correct([[row.probs[k] for k in keys] for row in rows], [keys.index(row.gold) for row in rows])


def _calibrated_confidence(stage: StageResult) -> tuple[list[float], list[bool]]:
    keys = stage.scores.scheme.keys
    return confidence_and_correct(stage.decision_probs, [keys.index(row.gold) for row in stage.scores.labelled])


def plot_reliability(stages: Sequence[StageResult], calibrated: bool = False) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for stage in stages:
        conf, correct = _calibrated_confidence(stage) if calibrated else _confidence(stage)
        points = reliability_bins(conf, correct)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=stage.name)
    ax.set_xlabel("confidence (max p(level))")
    ax.set_ylabel("accuracy of argmax")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("reliability after calibration" if calibrated else "reliability")
    return _png(fig)


def stage_tradeoff(stage: StageResult) -> tuple[list[TradeoffPoint], tuple[float, float]]:
    """The stage's precision/recall curve over the shown-mass threshold, and its own tiers' point."""
    scheme, gold = stage.scores.scheme, [row.gold for row in stage.scores.labelled]
    curve = tradeoff_curve(stage.decision_probs, gold, scheme, stage.irrelevant)
    return curve, shown_precision_recall(gold, stage.predicted, scheme, stage.irrelevant)


def plot_tradeoff(stages: Sequence[StageResult]) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    for stage in stages:
        curve, (precision, recall) = stage_tradeoff(stage)
        line, = ax.plot([p.recall for p in curve], [p.precision for p in curve], label=stage.name)
        ax.plot([recall], [precision], marker="o", color=line.get_color())
    ax.set_xlabel("recall of relevant pairs (shown)")
    ax.set_ylabel("precision of shown pairs")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    irrelevant = ", ".join(stages[0].irrelevant)
    ax.set_title(f"shown vs hidden ({irrelevant} hidden); dot: {stages[0].decision} tiers", fontsize=9)
    return _png(fig)


def plot_tiers(stage: StageResult) -> str:
    """Predicted tier counts, split by gold level (stacked)."""
    plt = pyplot()
    keys = stage.scores.scheme.keys
    gold = [row.gold for row in stage.scores.labelled]
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    bottom = [0] * len(keys)
    for g in keys:
        counts = [sum(1 for p, y in zip(stage.predicted, gold) if p == tier and y == g) for tier in keys]
        ax.bar(keys, counts, bottom=bottom, label=f"gold {g}")
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xlabel(f"tier ({stage.decision})")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=7)
    ax.set_title(f"tier distribution: {stage.name}")
    return _png(fig)


def plot_f1_per_stage(stages: Sequence[StageResult]) -> str:
    plt = pyplot()
    keys = stages[0].scores.scheme.keys
    fig, ax = plt.subplots(figsize=(5, 3.6))
    x = range(len(stages))
    ax.plot(x, [s.metrics.macro_f1 for s in stages], marker="o", linewidth=2.5, label="macro-F1")
    for key in keys:
        ax.plot(x, [s.metrics.per_level[key]["f1"] for s in stages], marker=".", linestyle=":", label=f"F1 {key}")
    ax.set_xticks(list(x), [s.name for s in stages], rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.legend(fontsize=7)
    ax.set_title("F1 per stage")
    return _png(fig)


# GRPO's per-step logs (TRL's log history, grpo/metrics.jsonl): panel title -> (key, label) curves
GRPO_CURVES = {
    "reward": (("reward", "batch as sampled"), ("dynamic_sampling/reward_after", "after dynamic sampling")),
    "accuracy": (("accuracy/all", "label correct"),),
    "KL to the reference": (("kl", "kl"),),
    "zero-variance groups": (("frac_reward_zero_std", "as sampled"), ("dynamic_sampling/frac_zero_std_after", "after refills")),
}


def plot_grpo_curves(history: Sequence[Mapping[str, Any]]) -> str:
    """Reward, accuracy, KL and the share of zero-variance groups per GRPO step: whether RL moved at all."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(GRPO_CURVES), figsize=(3.2 * len(GRPO_CURVES), 2.8))
    for ax, (title, curves) in zip(axes, GRPO_CURVES.items()):
        for key, label in curves:
            points = [(entry.get("step", i + 1), entry[key]) for i, entry in enumerate(history)
                      if isinstance(entry.get(key), int | float)]
            if points:
                ax.plot(*zip(*points), marker=".", label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if len(curves) > 1:
            ax.legend(fontsize=7)
    return _png(fig)


# --- HTML --------------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str) -> str:
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(name: str, data: str, alt: str) -> str:
    return f'<figure><img class="plot" data-plot="{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _stage_section(stage: StageResult, title: str | None = None, source: str | None = None, note: str = "") -> str:
    """``source``: the score file as the page names it (the run report: relative to the run directory)."""
    m, keys = stage.metrics, stage.scores.scheme.keys
    source = str(stage.scores.path) if source is None else source
    parts = [f"<h2>{html.escape(title or stage.name)}</h2>",
             f"<p>{m.n} labelled pairs from {html.escape(source)}; decisions: {stage.decision}.{note}</p>"]
    parts.append(_table(["level", "precision", "recall", "F1", "support"],
                        [[k, m.per_level[k]["precision"], m.per_level[k]["recall"], m.per_level[k]["f1"],
                          m.per_level[k]["support"]] for k in keys], "per-level"))
    parts.append("<h3>Confusion (rows gold, columns predicted)</h3>")
    parts.append(_table(["gold \\ predicted", *m.confusion_labels],
                        [[label, *row] for label, row in zip(m.confusion_labels, m.confusion)], "confusion"))
    parts.append("<h3>Tag slices (rule-derived tags, not human annotations)</h3>")
    if stage.slices:
        parts.append(_table(["slice", "n", "macro-F1", "accuracy", "QWK", *(f"F1 {k}" for k in keys)],
                            [[name, s.n, s.macro_f1, s.accuracy, s.qwk, *(s.per_level[k]["f1"] for k in keys)]
                             for name, s in stage.slices.items()], "slices"))
    else:
        parts.append("<p>No pair carries any of the tags " + ", ".join(SLICES) + ".</p>")
    parts.append(_img("confusion", plot_confusion(stage), f"confusion matrix of {stage.name}"))
    parts.append(_img("tiers", plot_tiers(stage), f"tier distribution of {stage.name}"))
    return "\n".join(parts)


HEADLINE = ["stage", "n", "decision", "macro-F1", "accuracy", "QWK", "argmax macro-F1", "NDCG@10", "NDCG",
            "over-recall", "ECE"]


def render_report(stages: Sequence[StageResult], cumpt: CumptFile | None,
                  grpo_history: Sequence[Mapping[str, Any]] | None = None) -> str:
    scheme = stages[0].scores.scheme
    calibrated = cumpt is not None and cumpt.calibration is not None
    header = HEADLINE + (["ECE calibrated", "macro-F1 CumPT uncalibrated"] if calibrated else [])
    headline = _table(
        header,
        [[s.name, s.metrics.n, s.decision, s.metrics.macro_f1, s.metrics.accuracy, s.metrics.qwk,
          s.argmax_metrics.macro_f1, s.ranking.ndcg_at_10, s.ranking.ndcg, s.over_recall, s.ece,
          *([s.ece_calibrated, s.uncalibrated_metrics.macro_f1 if s.uncalibrated_metrics else None] if calibrated else [])]
         for s in stages],
        "headline",
    )
    ranking = stages[0].ranking
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>taosr1 evaluation</title>",
        STYLE,
        "</head><body>",
        f"<h1>taosr1 evaluation ({html.escape(scheme.name)})</h1>",
        "<p>Headline: macro-F1 over the scheme's levels. Metrics from scikit-learn.</p>",
        headline,
        f"<p>NDCG: per query, pairs ranked by tier then expected level (gains 2<sup>g</sup> - 1 from the graded "
        f"labels), averaged over the {ranking.queries} queries with at least two levels ({ranking.skipped_queries} "
        f"with one level left out). Over-recall: share of pairs labelled {html.escape(', '.join(stages[0].irrelevant))} "
        f"placed in a shown tier. ECE: 10 equal-width bins of the top probability.</p>",
    ]
    if cumpt is not None:
        thresholds = ", ".join(f"t<sub>{html.escape(k)}</sub> = {v:.3f}" for k, v in cumpt.thresholds.items())
        parts.append(f"<p>CumPT thresholds: {thresholds}; fallback level {html.escape(cumpt.levels[-1])}.</p>")
    if calibrated:
        block = cumpt.calibration
        biases = ", ".join(f"{html.escape(k)}: {v:+.3f}" for k, v in block.biases.items()) or "none"
        parts.append(f"<p>Calibration before the thresholds ({html.escape(block.method)}, fitted on the CumPT file's "
                     f"dev split by log-loss): temperature {block.temperature:.3f}, biases {biases}. The same transform "
                     f"is applied to every stage here; it was fitted for one model.</p>")
    parts.append(_img("reliability", plot_reliability(stages), "reliability diagram"))
    if calibrated:
        parts.append(_img("reliability_calibrated", plot_reliability(stages, calibrated=True),
                          "reliability diagram after calibration"))
    parts.append(_img("tradeoff", plot_tradeoff(stages), "precision/recall trade-off of shown tiers"))
    if len(stages) > 1:
        parts.append(_img("f1_per_stage", plot_f1_per_stage(stages), "F1 per stage"))
        stability = stage_stability(stages, cumpt)
        if stability:
            parts.append("<h2>Tier stability (pairs whose tier changes from one stage to the next)</h2>")
            parts.append(_table(["from", "to", "n", "argmax changed", "argmax share", "CumPT changed", "CumPT share"],
                                [[t.first, t.second, t.n, t.argmax_changed, t.argmax_share, t.cumpt_changed,
                                  t.cumpt_share] for t in stability], "stability"))
    if grpo_history:
        parts.append(f"<h2>GRPO training, per logged step ({len(grpo_history)})</h2>")
        parts.append(_img("grpo_curves", plot_grpo_curves(grpo_history), "GRPO reward, accuracy, KL and zero-variance groups per step"))
    parts.extend(_stage_section(stage) for stage in stages)
    parts.append("</body></html>")
    return "\n".join(parts)


def _default_names(paths: Sequence[Path]) -> list[str]:
    """File names, or parent/file when two stages share a file name (runs/sft/scores.jsonl, runs/dpo/...)."""
    short = [p.name for p in paths]
    if len(set(short)) == len(short):
        return short
    return [f"{p.parent.name}/{p.name}" for p in paths]


def write_report(
    score_files: Sequence[str | Path | ScoreSet],
    out: str | Path,
    *,
    cumpt: str | Path | CumptFile | None = None,
    names: Sequence[str] | None = None,
    irrelevant: Sequence[str] | None = None,
    queries: Mapping[str, str] | None = None,
    grpo_history: Sequence[Mapping[str, Any]] | None = None,
) -> list[StageResult]:
    """Evaluate each score file (in stage order) and write the HTML report to ``out``; ``grpo_history``: GRPO's
    per-step logs, plotted as training curves."""
    if not score_files:
        raise ValueError("no score files to report on")
    cumpt_file = load_cumpt(cumpt) if isinstance(cumpt, str | Path) else cumpt
    sets = [s if isinstance(s, ScoreSet) else read_scores(s) for s in score_files]
    first = sets[0].scheme.name
    for s in sets[1:]:
        if s.scheme.name != first:
            raise DataError(str(s.path), None, "scheme", f"{s.scheme.name!r} differs from {first!r} in {sets[0].path}")
    names = list(names) if names else _default_names([Path(s.path) for s in sets])
    stages = [evaluate_scores(s, cumpt_file, name, irrelevant=irrelevant, queries=queries) for s, name in zip(sets, names)]
    document = render_report(stages, cumpt_file, grpo_history)
    with atomic_write(out) as fh:
        fh.write(document)
    return stages
