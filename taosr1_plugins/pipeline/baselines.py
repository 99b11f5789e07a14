"""`taosr1 baselines CONFIG`: every baseline trained on the run's train split and scored on its test split.

Each baseline writes ``RUN_DIR/baselines/NAME/`` with ``predictions.jsonl`` (id, gold, predicted, and the
baseline's own ranking ``score``, plus ``probs`` for those with a level distribution) and
``result.json`` (metrics, seconds, training pairs, and the fingerprint of its settings and inputs); a
baseline whose fingerprint is unchanged is skipped, like a stage of the main job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from taosr1_plugins.evaluation.baselines import BASELINES
from taosr1_plugins.core.display import print_table
from taosr1_plugins.evaluation.metrics import compute_metrics, metrics_table
from taosr1_plugins.core.jsonl import atomic_write, read_jsonl, write_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.context import RunContext
from taosr1_plugins.pipeline.manifest import fingerprint
from taosr1_plugins.core.prompts import rendering_probe
from taosr1_plugins.pipeline.runner import is_current, run_pipeline

console = Console()



@dataclass
class BaselineOutput:
    """A baseline's decisions on the test split and what it ranks by (ranking.py: higher first)."""

    predicted: list[str]
    details: dict[str, Any]
    scores: list[float]
    probs: list[list[float]] | None = None  # a level distribution, for the ECE column; None: it has none


def _tiered(probs: Sequence[Sequence[float]]) -> list[float]:
    from taosr1_plugins.deploy.cumpt import argmax_tier
    from taosr1_plugins.evaluation.ranking import tiered_score

    return [tiered_score(argmax_tier(p), p) for p in probs]


def _train(ctx: RunContext) -> list[Record]:
    return read_jsonl(ctx.split_path("train"), Record)


def _majority(ctx: RunContext, test: Sequence[Record]) -> BaselineOutput:
    from taosr1_plugins.evaluation.baselines.lexical import majority_label

    train = _train(ctx)
    label = majority_label(train)
    # one score for all: NDCG then counts every order of a query's items equally (ties share their gains)
    return BaselineOutput([label] * len(test), {"train_pairs": len(train), "label": label}, [0.0] * len(test))


def _lexical(score: Callable[[Sequence[Record]], Callable[[Record], float]]):
    def run(ctx: RunContext, test: Sequence[Record]) -> BaselineOutput:
        from taosr1_plugins.evaluation.baselines.lexical import FittedCutpoints, scaled

        train = [record for record in _train(ctx) if record.label is not None]
        scorer = score(train)
        train_raw = [scorer(record) for record in train]
        top = max(train_raw, default=0.0)
        cut = FittedCutpoints(scaled(train_raw, top), [record.label for record in train], ctx.scheme)
        test_scores = scaled([scorer(record) for record in test], top)
        predicted = [cut.predict(s) for s in test_scores]
        details = {"train_pairs": len(train), "thresholds": cut.thresholds, "train_macro_f1": round(cut.train_macro_f1, 4)}
        # the tier is a step function of the score, so ranking by the score is ranking by (tier, score)
        return BaselineOutput(predicted, details, test_scores)

    return run


def _overlap_scorer(train: Sequence[Record]) -> Callable[[Record], float]:
    from taosr1_plugins.evaluation.baselines.lexical import overlap_score

    return overlap_score


def _bm25_scorer(train: Sequence[Record]) -> Callable[[Record], float]:
    from taosr1_plugins.evaluation.baselines.lexical import BM25PairScorer

    return BM25PairScorer(train).raw


def _cross_encoder(ctx: RunContext, test: Sequence[Record]) -> BaselineOutput:
    from taosr1_plugins.evaluation.baselines.cross_encoder import predict_probs, train_cross_encoder

    settings = ctx.config.baselines.cross_encoder
    out_dir = ctx.path("baselines", "cross_encoder")
    summary = train_cross_encoder(_train(ctx)[: settings.max_train], ctx.scheme, out_dir, settings, seed=ctx.config.seed)
    from taosr1_plugins.deploy.cumpt import argmax_tier

    probs = predict_probs(out_dir / "model", test, max_length=settings.max_length)
    return BaselineOutput([ctx.scheme.keys[argmax_tier(p)] for p in probs], summary, _tiered(probs), probs)


def _scored_labels(ctx: RunContext, model: Path | str, test: Sequence[Record], out: Path,
                   details: dict[str, Any]) -> BaselineOutput:
    from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records

    settings = ScoreSettings(batch_size=ctx.config.baselines.batch_size, overwrite=True, progress=True)
    scored = read_scores(score_records(model, test, out, settings))
    probs = scored.ordered_probs()
    return BaselineOutput([row.label for row in scored.rows], details, _tiered(probs), probs)


def _zero_shot(ctx: RunContext, test: Sequence[Record]) -> BaselineOutput:
    return _scored_labels(ctx, ctx.base_model(), test, ctx.path("baselines", "zero_shot", "scores.jsonl"), {"train_pairs": 0})


def _direct_answer(ctx: RunContext, test: Sequence[Record]) -> BaselineOutput:
    from taosr1_plugins.pipeline.stages import export_sft_examples, fine_tune_sft

    stage_dir = ctx.path("baselines", "direct_answer")
    # the same draw of examples as CoT SFT (same sizes, balance and seed) from the split the CoT came from; it
    # carries no reasoning, so with allow_missing_cot every target is the answer alone
    exported = export_sft_examples(ctx, ctx.split_path("train"), stage_dir / "lf_data", "direct_answer", allow_missing_cot=True)
    overrides = {**ctx.config.sft.overrides, **ctx.config.baselines.direct_answer_overrides}
    summary = fine_tune_sft(ctx, exported, stage_dir, overrides)
    details = {"train_pairs": summary["examples"], **{k: summary.get(k) for k in ("steps", "train_loss")}}
    return _scored_labels(ctx, stage_dir / "model", test, stage_dir / "scores.jsonl", details)


def _direct_answer_cumpt(ctx: RunContext, test: Sequence[Record]) -> BaselineOutput:
    """The direct-answer model decided like the final row: calibration and CumPT thresholds fitted on dev with the
    run's deploy settings, read from the test scores the direct_answer baseline wrote."""
    from taosr1_plugins.deploy.calibration import fit_cumpt, load_cumpt, write_cumpt
    from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records
    from taosr1_plugins.errors import UserError
    from taosr1_plugins.evaluation.ranking import tiered_score

    trained = ctx.path("baselines", "direct_answer")
    if not (trained / "model" / "config.json").is_file() or not (trained / "scores.jsonl").is_file():
        raise UserError("direct_answer_cumpt decides with the direct_answer baseline's model: run that baseline first")
    deploy, out = ctx.config.deploy, ctx.path("baselines", "direct_answer_cumpt")
    settings = ScoreSettings(batch_size=ctx.config.baselines.batch_size, overwrite=True, progress=True)
    dev_records = read_jsonl(ctx.split_path("dev"), Record)
    dev = score_records(trained / "model", dev_records, out / "dev_scores.jsonl", settings)
    cumpt_file = write_cumpt(fit_cumpt(dev, objective=deploy.objective, precision_targets=deploy.precision_targets or None,
                                       calibration=deploy.calibration), out / "cumpt.json")
    partition = load_cumpt(cumpt_file).to_cumpt()
    by_id = {row.id: row for row in read_scores(trained / "scores.jsonl").rows}
    raw = [[by_id[record.id].probs[key] for key in ctx.scheme.keys] for record in test]
    tiers = [partition.tier_index(p) for p in raw]
    calibrated = [partition.calibrated(p) for p in raw]
    details = {"train_pairs": None, "cumpt": str(cumpt_file), "dev_pairs": len(dev_records)}
    return BaselineOutput([ctx.scheme.keys[t] for t in tiers], details,
                          [tiered_score(t, p) for t, p in zip(tiers, calibrated)], calibrated)


RUNNERS: dict[str, Callable[[RunContext, Sequence[Record]], BaselineOutput]] = {
    "majority": _majority,
    "overlap": _lexical(_overlap_scorer),
    "bm25": _lexical(_bm25_scorer),
    "cross_encoder": _cross_encoder,
    "zero_shot": _zero_shot,
    "direct_answer": _direct_answer,
    "direct_answer_cumpt": _direct_answer_cumpt,
}


def _settings(config: RunConfig, name: str) -> Any:
    settings: list[Any] = [name, config.seed, str(config.format), config.model.base]
    if name == "cross_encoder":
        settings.append(config.baselines.cross_encoder.model_dump())
    if name == "direct_answer":
        settings += [config.sft.model_dump(), config.baselines.direct_answer_overrides]
    if name == "direct_answer_cumpt":
        # what the direct-answer model is (its own fingerprint) and how it is decided
        settings += [_settings(config, "direct_answer"), config.deploy.fingerprint()]
    if name in ("zero_shot", "direct_answer"):
        # both prompt the LM with the run's prompt: its settings and what it renders to
        settings += [config.prompt.model_dump(), rendering_probe(config.prompt, config.format), config.baselines.batch_size]
    return settings


def run_baselines(config: RunConfig, only: Sequence[str] | None = None, force: bool = False) -> dict[str, dict[str, Any]]:
    """Run the configured baselines (or ``only`` these); returns name -> result.json contents."""
    ctx = RunContext(config)
    # the main job's splits; the manifest is left alone when they are current, so this can run beside `taosr1 run`
    if not (is_current(ctx, "import") and is_current(ctx, "split")):
        run_pipeline(config, until_stage="split")
        ctx = RunContext(config)
    names = list(only) if only else list(config.baselines.run)
    unknown = sorted(set(names) - set(RUNNERS))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; known: {', '.join(RUNNERS)}")
    test = read_jsonl(ctx.split_path("test"), Record)
    gold = [record.label for record in test]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        out_dir = ctx.path("baselines", name)
        result_path = out_dir / "result.json"
        inputs = [ctx.split_path("train"), ctx.split_path("test")]
        if name == "direct_answer_cumpt":  # decided from that model's test scores, with thresholds fitted on dev
            inputs += [ctx.split_path("dev"), ctx.path("baselines", "direct_answer", "scores.jsonl")]
        stamp = fingerprint(_settings(config, name), inputs)
        previous = json.loads(result_path.read_text()) if result_path.exists() else {}
        if not force and previous.get("fingerprint") == stamp:
            console.print(f"[dim]✓ {name}: unchanged, skipped[/dim]")
            results[name] = previous
            continue
        console.rule(f"[bold]baseline: {name}")
        out_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        output = RUNNERS[name](ctx, test)
        predicted, details = output.predicted, output.details
        seconds = round(time.perf_counter() - started, 1)
        probs = output.probs or [None] * len(test)
        write_jsonl(
            out_dir / "predictions.jsonl",
            ({"id": r.id, "gold": r.label, "predicted": p, "score": round(s, 6),
              **({"probs": {k: round(x, 6) for k, x in zip(ctx.scheme.keys, q)}} if q is not None else {})}
             for r, p, s, q in zip(test, predicted, output.scores, probs)),
        )
        metrics = compute_metrics(gold, predicted, ctx.scheme)
        results[name] = {
            "baseline": name,
            "label": BASELINES[name],
            "fingerprint": stamp,
            "seconds": seconds,
            "details": details,
            "metrics": metrics.to_dict(),
        }
        with atomic_write(result_path) as fh:
            json.dump(results[name], fh, indent=2)
        console.print(f"[green]✓ {name}[/green] in {seconds:.1f}s: macro-F1 {metrics.macro_f1:.3f}")
    from taosr1_plugins.evaluation.metrics import Metrics

    table = {BASELINES[name]: Metrics(**result["metrics"]) for name, result in results.items()}
    print_table(metrics_table(table, ctx.scheme, title=f"baselines on test ({len(test)} pairs)"), console)
    return results
