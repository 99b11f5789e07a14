"""`taosr1 report RUN_DIR`: the ablation table of a run, baselines and TaoSR1 stages side by side.

Rows, all on the run's test split:
- every baseline under ``baselines/`` (`taosr1 baselines CONFIG`);
- SFT-CoT, +DPO, +GRPO: each stage's model's label probabilities from the deploy stage (one forward pass
  after ``<answer>``), decided by argmax; with the answer-first format this is the label the model
  decodes first;
- +CumPT: the final model's probabilities decided by the CumPT thresholds fitted on dev (after the
  calibration fitted there, when the cumpt.json has one); its "macro-F1 uncalibrated" is that of the
  thresholds fitted on the raw distribution, so the table shows macro-F1 with and without calibration.
Columns: macro-F1, accuracy, QWK, per-level F1, NDCG@10 and NDCG per query (ranking.py, each row by its
own score), over-recall of irrelevant pairs (over_recall.py), ECE of the row's level distribution (and
after calibration, for the row that has one), training pairs, wall seconds, and, where the eval stage
generated responses for that model, its valid-format rate. A second table gives tier stability between
consecutive stages (stability.py), and a third how sure each row is (intervals.py): macro-F1 and QWK with 95%
intervals from a bootstrap over test queries, and the paired difference of each stage with the one before it,
and of the final row with the direct answer and MiniLM. Written, with per-stage metrics, the worst errors and the
run's metadata, as one HTML page, ``RUN_DIR/report/report.html`` (run_report.py; the deploy stage writes the same
page), and the numbers as ``RUN_DIR/report/ablation.json``; `taosr1 report` prints the tables as Markdown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from taosr1_plugins.evaluation.baselines import BASELINES
from taosr1_plugins.evaluation.intervals import Bootstrap
from taosr1_plugins.errors import DataError
from taosr1_plugins.evaluation.metrics import Metrics
from taosr1_plugins.core.jsonl import atomic_write, iter_jsonl_objects, read_jsonl
from taosr1_plugins.evaluation.over_recall import irrelevant_levels, over_recall_from_confusion
from taosr1_plugins.evaluation.ranking import RankingMetrics
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, scheme_of
from taosr1_plugins.evaluation.stability import TierStability


@dataclass
class AblationRow:
    name: str
    kind: str  # "baseline" or "taosr1"
    metrics: Metrics
    train_pairs: int | None = None
    seconds: float | None = None
    generation_format_ok: float | None = None
    ranking: RankingMetrics | None = None  # None: the row has no per-pair score to rank by
    over_recall: float | None = None
    ece: float | None = None  # None: the row has no level distribution
    ece_calibrated: float | None = None
    macro_f1_uncalibrated: float | None = None  # +CumPT: thresholds fitted on the raw distribution instead


@dataclass
class Ablation:
    run_dir: Path
    scheme: LabelScheme
    test_pairs: int
    rows: list[AblationRow]
    stage_seconds: dict[str, float]
    irrelevant: list[str] = field(default_factory=list)
    stability: list[TierStability] = field(default_factory=list)
    bootstrap: Bootstrap | None = None  # None: no row kept its per-pair predictions
    # for the HTML report (report/report.html), not in ablation.json: the run's manifest, its test split, each
    # TaoSR1 row's evaluation (row name -> report.StageResult) and the deployed CumPT file
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    test: list[Record] = field(default_factory=list, repr=False)
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    cumpt: Any = field(default=None, repr=False)
    final: str | None = None  # the deployed stage (whose model +CumPT decides with)
    trained: tuple[tuple[str, str], ...] = ()  # the pipeline's (stage, row label) pairs, in training order

    def to_dict(self) -> dict[str, Any]:
        boot = self.bootstrap
        return {
            "run_dir": str(self.run_dir),
            "scheme": self.scheme.name,
            "test_pairs": self.test_pairs,
            "irrelevant": self.irrelevant,
            "rows": [{**asdict(row), "metrics": row.metrics.to_dict()} for row in self.rows],
            "stability": [t.to_dict() for t in self.stability],
            "stage_seconds": self.stage_seconds,
            # metric -> [value, low, high] per row, and per paired difference (second - first)
            "intervals": None if boot is None else {
                "resamples": boot.resamples, "queries": boot.queries,
                "rows": {name: {m: i.to_list() for m, i in metrics.items()} for name, metrics in boot.rows.items()},
                "differences": [d.to_dict() for d in boot.differences],
            },
        }


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(str(path), None, None, f"cannot read: {exc}") from exc


def _capped(count: Any, cap: Any) -> int | None:
    if not isinstance(count, int):
        return None
    return min(count, cap) if isinstance(cap, int) else count


def _baseline_view(path: Path, metrics: Metrics, scheme: LabelScheme, irrelevant: list[str],
                   queries: dict[str, str]) -> dict[str, Any]:
    """Ranking and ECE from a baseline's predictions.jsonl (when it kept its scores), over-recall from its
    confusion matrix (so result files from before the scores were kept still get that column)."""
    from taosr1_plugins.evaluation.ranking import ranking_metrics
    from taosr1_plugins.evaluation.reliability import ece_of

    view: dict[str, Any] = {"over_recall": over_recall_from_confusion(metrics.confusion, metrics.confusion_labels,
                                                                      scheme, irrelevant)}
    rows = [row for _, row in iter_jsonl_objects(path)] if path.exists() else []
    if rows and all(isinstance(row.get("score"), int | float) and row.get("gold") in scheme.keys for row in rows):
        gold = [scheme.keys.index(row["gold"]) for row in rows]
        view["ranking"] = ranking_metrics([queries.get(row["id"], row["id"]) for row in rows], gold,
                                          [float(row["score"]) for row in rows], len(scheme.keys))
        if all(isinstance(row.get("probs"), dict) for row in rows):
            view["ece"] = ece_of([[float(row["probs"][k]) for k in scheme.keys] for row in rows], gold)
    return view


def _stage_row(label: str, result, **extra: Any) -> AblationRow:
    return AblationRow(label, "taosr1", result.metrics, ranking=result.ranking, over_recall=result.over_recall,
                       ece=result.ece, ece_calibrated=result.ece_calibrated, **extra)


def collect_ablation(run_dir: str | Path, trained: Sequence[tuple[str, str]],
                     irrelevant: list[str] | None = None, final: str | None = None) -> Ablation:
    """``trained``: the pipeline's trained stages in training order, as (stage, row label) pairs.

    ``irrelevant``: levels for over-recall (default: the run config's ``deploy.irrelevant``, else the lowest).
    ``final``: the deployed stage, from the deploy stage itself (the manifest records it only once that stage
    is done); without it the +CumPT row needs a finished deploy stage.
    """
    from taosr1_plugins.deploy.calibration import load_cumpt
    from taosr1_plugins.evaluation.report import evaluate_scores
    from taosr1_plugins.deploy.scoring import read_scores
    from taosr1_plugins.evaluation.stability import tier_stability

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise DataError(str(manifest_path), None, None, "no manifest: is this a `taosr1 run` directory?")
    manifest = _json(manifest_path)
    stages, config = manifest.get("stages", {}), manifest.get("config", {})
    test = read_jsonl(run_dir / "data" / "test.jsonl", Record)
    if not test:
        raise DataError(str(run_dir / "data" / "test.jsonl"), None, None, "no test pairs")
    scheme = scheme_of(test[0])
    test_ids = sorted(record.id for record in test)
    queries = {record.id: record.query for record in test}
    try:
        bad = irrelevant_levels(scheme, irrelevant or config.get("deploy", {}).get("irrelevant"))
    except ValueError as exc:
        raise DataError(str(manifest_path), None, "irrelevant", str(exc)) from exc

    rows: list[AblationRow] = []
    predicted: dict[str, dict[str, int] | None] = {}  # row -> id -> predicted level index, for the intervals
    for name in BASELINES:
        path = run_dir / "baselines" / name / "result.json"
        if path.exists():
            result = _json(path)
            metrics = Metrics(**result["metrics"])
            view = _baseline_view(path.with_name("predictions.jsonl"), metrics, scheme, bad, queries)
            rows.append(
                AblationRow(result["label"], "baseline", metrics,
                            result.get("details", {}).get("train_pairs"), result.get("seconds"), **view)
            )
            predicted[result["label"]] = _baseline_predictions(path.with_name("predictions.jsonl"), scheme)

    generation = _json(run_dir / "eval" / "metrics.json") if (run_dir / "eval" / "metrics.json").exists() else {}
    train_pairs = {
        "sft": _capped(stages.get("export", {}).get("outputs", {}).get("records"),
                       config.get("sft", {}).get("overrides", {}).get("max_samples")),
        "dpo": _capped(stages.get("pairs", {}).get("outputs", {}).get("pairs"),
                       config.get("dpo", {}).get("overrides", {}).get("max_samples")),
    }
    scored = {}
    results: dict[str, Any] = {}
    for stage, label in trained:
        path = run_dir / "deploy" / f"test_scores_{stage}.jsonl"
        if not path.exists():
            continue
        scores = read_scores(path, require_gold=True)
        if sorted(row.id for row in scores.rows) != test_ids:
            raise DataError(str(path), None, "id", "scores do not cover the run's test split; re-run the deploy stage")
        scored[stage] = scores
        gen = generation.get(label, {}).get("format_ok_rate")
        result = evaluate_scores(scores, None, label, irrelevant=bad, queries=queries)
        rows.append(_stage_row(label, result, train_pairs=train_pairs.get(stage),
                               seconds=stages.get(stage, {}).get("seconds"), generation_format_ok=gen))
        predicted[label] = _stage_predictions(result, scheme)
        results[label] = result
    # CumPT thresholds belong to the model they were fitted on (the deploy stage's final model), and only a
    # finished deploy stage has both its thresholds and that model's test scores
    deploy = stages.get("deploy", {})
    cumpt_path = run_dir / "deploy" / "cumpt.json"
    deployed = final is not None or deploy.get("status") == "done"
    final = final or deploy.get("outputs", {}).get("model")
    cumpt = None
    if deployed and cumpt_path.exists() and final in scored:
        cumpt = load_cumpt(cumpt_path)
        result = evaluate_scores(scored[final], cumpt, "+CumPT", irrelevant=bad, queries=queries)
        uncalibrated = result.uncalibrated_metrics
        rows.append(_stage_row("+CumPT", result, seconds=deploy.get("seconds"),
                               macro_f1_uncalibrated=uncalibrated.macro_f1 if uncalibrated is not None else None))
        predicted["+CumPT"] = _stage_predictions(result, scheme)
        results["+CumPT"] = result
    labels = dict(trained)
    order = [stage for stage, _ in trained if stage in scored]
    partition = cumpt.to_cumpt() if cumpt is not None else None
    stability = [tier_stability(scored[a], scored[b], partition, (labels[a], labels[b])) for a, b in zip(order, order[1:])]
    for row in rows:
        if row.metrics.n != len(test):
            raise DataError(None, None, None, f"{row.name!r} was evaluated on {row.metrics.n} pairs, the test split has {len(test)}")
    stage_seconds = {name: entry["seconds"] for name, entry in stages.items() if entry.get("seconds") is not None}
    bootstrap = _bootstrap(test, scheme, rows, predicted)
    return Ablation(run_dir, scheme, len(test), rows, stage_seconds, bad, stability, bootstrap,
                    manifest=manifest, test=test, results=results, cumpt=cumpt, final=final, trained=tuple(trained))


def _baseline_predictions(path: Path, scheme: LabelScheme) -> dict[str, int] | None:
    """id -> predicted level index from a baseline's predictions.jsonl; None when it has none to read."""
    if not path.exists():
        return None
    rows = [row for _, row in iter_jsonl_objects(path)]
    if not all(row.get("predicted") in scheme.keys for row in rows):
        return None
    return {row["id"]: scheme.keys.index(row["predicted"]) for row in rows}


def _stage_predictions(result, scheme: LabelScheme) -> dict[str, int]:
    return {row.id: scheme.keys.index(label) for row, label in zip(result.scores.labelled, result.predicted)}


def _bootstrap(test: Sequence[Record], scheme: LabelScheme, rows: Sequence[AblationRow],
               predicted: dict[str, dict[str, int] | None]) -> Bootstrap | None:
    """Intervals of every row whose predictions cover the test split; paired differences of each TaoSR1 row
    with the one before it, and of the final row with the direct answer (argmax and like for like, +CumPT) and
    MiniLM."""
    from taosr1_plugins.evaluation.intervals import bootstrap_by_query

    ids = [record.id for record in test]
    usable = {name: [by_id[i] for i in ids] for name, by_id in predicted.items()
              if by_id is not None and all(i in by_id for i in ids)}
    if not usable:
        return None
    stages = [row.name for row in rows if row.kind == "taosr1" and row.name in usable]
    compare = list(zip(stages, stages[1:]))
    if stages:
        compare += [(BASELINES[name], stages[-1]) for name in ("direct_answer", "direct_answer_cumpt", "cross_encoder")]
    gold = [scheme.keys.index(record.label) for record in test]
    return bootstrap_by_query([record.query for record in test], gold, usable, len(scheme.keys), compare)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def markdown_table(ablation: Ablation) -> str:
    levels = ablation.scheme.levels
    header = ["method", "train pairs", "macro-F1", "macro-F1 uncalibrated", "accuracy", "QWK",
              *(f"F1 {level.token}" for level in levels), "NDCG@10", "NDCG", "over-recall", "ECE", "ECE calibrated",
              "valid format (gen.)", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ablation.rows:
        m, r = row.metrics, row.ranking
        cells = [row.name, _fmt(row.train_pairs, "d"), _fmt(m.macro_f1), _fmt(row.macro_f1_uncalibrated),
                 _fmt(m.accuracy), _fmt(m.qwk),
                 *(_fmt(m.per_level[level.key]["f1"]) for level in levels),
                 _fmt(r.ndcg_at_10 if r else None), _fmt(r.ndcg if r else None), _fmt(row.over_recall),
                 _fmt(row.ece), _fmt(row.ece_calibrated), _fmt(row.generation_format_ok, ".0%"), _fmt(row.seconds, ".0f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ranking_queries(ablation: Ablation) -> int:
    return next((row.ranking.queries for row in ablation.rows if row.ranking is not None), 0)


def why_no_ranking(ablation: Ablation) -> str:
    """Why the ranking view averaged over no query: what the test split's queries look like."""
    by_query: dict[str, list[str | None]] = {}
    for record in ablation.test:
        by_query.setdefault(record.query, []).append(record.label)
    several = [levels for levels in by_query.values() if len(levels) > 1]
    graded = [levels for levels in several if len(set(levels)) > 1]
    if not several:
        return (f"each of the {len(by_query)} test queries has a single judged pair, so there is no order within a "
                "query to score (split.max_pairs may have capped the test split, or the data judges one item per query)")
    if not graded:
        return (f"{len(several)} of the {len(by_query)} test queries have several pairs, but within each query they "
                "all share one gold level, so every order is as good as any other")
    return (f"{len(graded)} test queries have pairs at two or more levels, but no row kept a per-pair score "
            "with its query to rank by")


def notes(ablation: Ablation) -> str:
    queries = ranking_queries(ablation)
    ndcg = (f"NDCG: per query, each row ranked by its own score (TaoSR1 rows: tier, then expected level), gains "
            f"2^g - 1, averaged over the {queries} test queries with at least two levels." if queries else
            f"NDCG: not computed, because {why_no_ranking(ablation)}.")
    return (f"{ndcg} Over-recall: share of "
            f"pairs labelled {', '.join(ablation.irrelevant)} placed in a shown tier. ECE: 10 bins of the top "
            f"probability, for rows with a level distribution; calibrated only where a calibration was fitted.\n")


def intervals_tables(boot: Bootstrap) -> str:
    """Each row's macro-F1 and QWK with its 95% interval, then the paired differences and what they say."""
    def cell(interval) -> str:
        return f"{interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"

    def signed(interval) -> str:
        return f"{interval.value:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}]"

    lines = ["| method | macro-F1 [95% CI] | QWK [95% CI] |", "|---|---|---|"]
    lines += [f"| {name} | {cell(m['macro_f1'])} | {cell(m['qwk'])} |" for name, m in boot.rows.items()]
    if boot.differences:
        lines += ["", "| change | Δ macro-F1 [95% CI] | Δ QWK [95% CI] | macro-F1 says |", "|---|---|---|---|"]
        lines += [f"| {d.first} → {d.second} | {signed(d.metrics['macro_f1'])} | {signed(d.metrics['qwk'])} | {d.verdict} |"
                  for d in boot.differences]
    return "\n".join(lines) + "\n"


def stability_table(ablation: Ablation) -> str:
    lines = ["| from | to | pairs | tier changed (argmax) | tier changed (CumPT) |", "|---|---|---|---|---|"]
    for t in ablation.stability:
        cumpt = "-" if t.cumpt_changed is None else f"{t.cumpt_changed} ({t.cumpt_share:.1%})"
        lines.append(f"| {t.first} | {t.second} | {t.n} | {t.argmax_changed} ({t.argmax_share:.1%}) | {cumpt} |")
    return "\n".join(lines) + "\n"


def seconds_table(ablation: Ablation) -> str:
    lines = ["| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in ablation.stage_seconds.items()]
    lines.append(f"| total | {sum(ablation.stage_seconds.values()):.0f} |")
    return "\n".join(lines) + "\n"


def plot_ablation(ablation: Ablation) -> str:
    """macro-F1 and QWK per row, as a base64 PNG for the report."""
    from taosr1_plugins.evaluation.report import _png, pyplot

    plt = pyplot()
    names = [row.name for row in ablation.rows]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    y = list(range(len(names)))
    colours = ["#999999" if row.kind == "baseline" else "#1f77b4" for row in ablation.rows]
    ax.barh([i + 0.2 for i in y], [row.metrics.macro_f1 for row in ablation.rows], height=0.4, color=colours, label="macro-F1")
    ax.barh([i - 0.2 for i in y], [row.metrics.qwk for row in ablation.rows], height=0.4, color=colours, alpha=0.45, label="QWK")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"on {ablation.test_pairs} test pairs (grey: baselines, blue: TaoSR1 stages; light: QWK)")
    ax.set_title(f"{ablation.run_dir.name}: macro-F1 and QWK")
    fig.tight_layout()
    return _png(fig)


def ablation_markdown(ablation: Ablation) -> str:
    """The tables as Markdown, for the terminal (`taosr1 report` prints it)."""
    parts = [f"## {ablation.run_dir.name}: {ablation.test_pairs} test pairs, scheme {ablation.scheme.name}\n\n",
             markdown_table(ablation) + "\n" + notes(ablation)]
    if ablation.bootstrap is not None:
        boot = ablation.bootstrap
        parts.append(f"\nHow sure each row is: 95% intervals from {boot.resamples} bootstrap draws of the "
                     f"{boot.queries} test queries (every pair of a drawn query, every row on the same draws, so "
                     "differences are paired). A change adds only where its interval excludes 0.\n\n"
                     + intervals_tables(boot))
    if ablation.stability:
        parts.append("\nTier stability on the test split (the same rule for both checkpoints; CumPT: the deployed "
                     "thresholds and calibration):\n\n" + stability_table(ablation))
    parts.append("\nWall time per stage of the main job:\n\n" + seconds_table(ablation))
    return "".join(parts)


def write_ablation(run_dir: str | Path, trained: Sequence[tuple[str, str]], out_dir: str | Path | None = None,
                   irrelevant: list[str] | None = None, final: str | None = None) -> tuple[Ablation, dict[str, Path]]:
    """The run's one report: ``report.html`` (self-contained: tables, plots, metadata, worst errors) and its
    numbers as ``ablation.json``, under ``RUN_DIR/report/`` unless ``out_dir`` says otherwise."""
    from taosr1_plugins.evaluation.run_report import render_run_report

    ablation = collect_ablation(run_dir, trained, irrelevant, final)
    if not ablation.rows:
        raise DataError(str(run_dir), None, None, "nothing to report: run `taosr1 run` and/or `taosr1 baselines` first")
    out = Path(out_dir) if out_dir else ablation.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "json": out / "ablation.json"}
    with atomic_write(paths["json"]) as fh:
        json.dump(ablation.to_dict(), fh, indent=2)
    with atomic_write(paths["html"]) as fh:
        fh.write(render_run_report(ablation, out))
    return ablation, paths
