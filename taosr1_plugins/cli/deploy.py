"""Deployment commands: `taosr1 score`, `calibrate`, `serve`, `serve-chat`, `eval` and `post-cot`."""

from __future__ import annotations

from pathlib import Path

import typer

from taosr1_plugins.cli.options import finite, option
from taosr1_plugins.deploy.serving.batching import MAX_WAIT_S
from taosr1_plugins.deploy.config import CalibrationSettings, ExplainSettings, RaySettings, ScoringSettings


def score(
    model: str = typer.Option(..., "--model", help="Answer-first checkpoint: folder, built-in model (smollm2, tiny) or "
                              "Hub id."),
    data: Path = typer.Option(..., "--data", help="Records: a JSONL or Parquet file, or a folder of them (labels "
                              "optional; gold is copied when present)."),
    out: Path = typer.Option(..., "--out", help="scores.jsonl: p(level) per pair, argmax label, tier, score."),
    backend: str = option(ScoringSettings, "backend"),
    batch_size: int = option(ScoringSettings, "batch_size", min=1),
    explain: bool = typer.Option(False, "--explain", help="Also decode the reasoning after the label (slow); the same "
                                 "as --explain-mode always."),
    explain_mode: str | None = typer.Option(None, "--explain-mode", help="never, always, or auto: only pairs whose CumPT "
                                            "tier margin is below --explain-margin (needs --cumpt)."),
    explain_margin: float = option(ExplainSettings, "explain_margin", min=0, max=1),
    cumpt: Path | None = typer.Option(None, "--cumpt", help="cumpt.json: tier, score and margin from the calibrated "
                                      "distribution (probs and label stay the model's own)."),
    max_explain_tokens: int = option(ExplainSettings, "max_explain_tokens", min=1),
    device: str = typer.Option("auto", "--device"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N records."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished OUT. An interrupted run is always resumed."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    executor: str = option(ScoringSettings, "executor"),
    address: str | None = option(RaySettings, "address"),
    actors: int = option(RaySettings, "actors", min=1),
    cpus_per_actor: float = option(RaySettings, "cpus_per_actor", min=0.01),
    gpus_per_actor: float = option(RaySettings, "gpus_per_actor", min=0),
    part_rows: int = option(RaySettings, "part_rows", min=1),
) -> None:
    """Label probabilities in one forward pass per pair; rerun the same command to resume."""
    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.core.model_scheme import choose_scheme
    from taosr1_plugins.deploy.calibration import load_cumpt
    from taosr1_plugins.deploy.config import ScoreSettings
    from taosr1_plugins.deploy.pair_files import PairSource, read_pair_records
    from taosr1_plugins.deploy.scoring import ExplainPolicy, resolve_scoring_model, score_records
    from taosr1_plugins.errors import DataError, OutputExistsError
    from taosr1_plugins.cli import fail, in_vllm_environment
    from taosr1_plugins import plugins
    from taosr1_plugins.core.options import offered, validate_options

    check_outputs([out, out.with_name(out.name + ".partial")], [data, cumpt])
    if executor not in ("local", "ray"):
        fail(f"--executor must be local or ray, not {executor!r}", 2)
    if address and executor != "ray":  # joining a cluster only to score in this process is surely a mistake
        fail("--address names a Ray cluster: give --executor ray too", 2)
    if data.is_dir() and out.parent.resolve() == data.resolve():  # the next run would read its own output as input
        fail(f"--out {out} is inside the input folder {data}", 2)
    adapter = plugins.get("deployment_adapter", backend)  # cli.main() reports an unknown name
    # what the adapter will be given, checked by its options model before a file is read (vllm refuses --device cpu)
    validate_options(adapter, offered(adapter, {}, device=device, batch_size=batch_size,
                                      max_explain_tokens=max_explain_tokens), what=f"deployment adapter {backend!r}")
    # the options are fine: vLLM's own environment does the rest, Ray included (it is started from there, below, so
    # its actors run that interpreter)
    in_vllm_environment(backend, executor)
    cumpt_file = load_cumpt(cumpt) if cumpt else None
    partition = cumpt_file.to_cumpt() if cumpt_file else None
    if explain and explain_mode not in (None, "always"):
        fail(f"--explain means --explain-mode always, not {explain_mode!r}; give one of them", 2)
    mode = explain_mode or ("always" if explain else "never")
    try:  # before the model loads: a bad --explain-mode is the command line's fault
        ExplainPolicy(mode, explain_margin, partition)
    except ValueError as exc:
        fail(str(exc), 2)
    if executor == "ray" and limit is None:
        # every row checked here, before a cluster starts; Ray Data reads the files again on the cluster
        source = PairSource.scan(data)
    else:
        records = read_pair_records(data)[:limit]
        source = PairSource.of_records(records) if records else None
    model = resolve_scoring_model(model, backend)  # a built-in name, folder or Hub id; a served model's name as is
    if source is not None:  # a model trained for other levels would give numbers with no meaning
        choose_scheme(model, given=source.scheme, given_by="the records")
    ray_settings = RaySettings(address=address, actors=actors, cpus_per_actor=cpus_per_actor,
                               gpus_per_actor=gpus_per_actor, part_rows=part_rows)
    settings = ScoreSettings(backend=backend, batch_size=batch_size, explain=mode, explain_margin=explain_margin,
                             cumpt=partition, max_explain_tokens=max_explain_tokens, device=device,
                             overwrite=overwrite, progress=progress, executor=executor, ray=ray_settings)
    if cumpt_file is not None and source is not None and source.scheme != cumpt_file.scheme:
        # a DataError: the command group reports it (one line, status 2)
        raise DataError(str(cumpt), None, "scheme", f"is for scheme {cumpt_file.scheme!r}, the records "
                        f"are {source.scheme!r}")
    try:
        if source is not None and source.records is None:
            from taosr1_plugins.deploy.ray_data.executor import score_on_ray

            score_on_ray(model, source, out, settings)
        else:
            score_records(model, source.records if source else [], out, settings)
    except OutputExistsError as exc:
        fail(f"{exc} (use --overwrite)", 2)
    except ValueError as exc:  # e.g. a bad option value (an unknown --backend is reported by cli.main())
        fail(str(exc), 2)
    except RuntimeError as exc:
        fail(str(exc))
    typer.echo(f"wrote {len(source.ids) if source else 0} scores to {out}")


def calibrate(
    scores: Path = typer.Option(..., "--scores", help="Scores of a labelled dev split (from `taosr1 score`)."),
    out: Path = typer.Option(..., "--out", help="cumpt.json: thresholds, split, objective, value, argmax comparison."),
    objective: str = option(CalibrationSettings, "objective"),
    precision_targets: str | None = typer.Option(None, "--precision-targets", help="e.g. 4=0.9,3=0.7 (level=min precision)."),
    split: str = typer.Option("dev", "--split", help="Name of the split, recorded in the output."),
    calibration: str = option(CalibrationSettings, "calibration"),
) -> None:
    """Fit a calibration and CumPT thresholds on labelled scores; compare with argmax on the same pairs."""
    from taosr1_plugins.deploy.calibration import fit_cumpt, write_cumpt
    from taosr1_plugins.deploy.cumpt import parse_precision_targets
    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.deploy.scoring import read_scores
    from taosr1_plugins.cli import fail

    check_outputs([out], [scores])
    score_set = read_scores(scores, require_gold=True)
    try:
        targets = parse_precision_targets(precision_targets, score_set.scheme.keys) if precision_targets else None
        result = fit_cumpt(score_set, objective=objective, precision_targets=targets, split=split,
                           calibration=calibration)
    except ValueError as exc:
        fail(str(exc), 2)
    write_cumpt(result, out)
    gain = result["macro_f1_gain_over_argmax"]
    typer.echo(f"{split} ({result['split']['n']} pairs): CumPT macro-F1 {result['cumpt']['macro_f1']:.3f}, "
               f"argmax {result['argmax']['macro_f1']:.3f} ({gain:+.3f}); thresholds {result['thresholds']} -> {out}")
    block = result.get("calibration")
    if block:
        typer.echo(f"calibration {block['method']}: temperature {block['temperature']:.3f}; log-loss "
                   f"{block['log_loss']['before']:.4f} -> {block['log_loss']['after']:.4f}, ECE "
                   f"{block['ece']['before']:.3f} -> {block['ece']['after']:.3f}; CumPT macro-F1 uncalibrated "
                   f"{block['uncalibrated_cumpt']['macro_f1']:.3f}")
        if block["temperature_at_bound"]:
            typer.secho("warning: the temperature stopped at the end of its range (0.05 to 20); on this dev split the "
                        "model's level logits carry little beyond the level shares", fg="yellow", err=True)
        if block["macro_f1_gain_over_uncalibrated"] < 0:
            typer.secho("warning: CumPT on the calibrated distribution is below CumPT on the raw one on this dev split",
                        fg="yellow", err=True)
    if gain < 0:
        typer.secho("warning: the fitted thresholds are below argmax on their own dev split", fg="yellow", err=True)


def serve(
    model: str = typer.Option(..., "--model", help="Answer-first checkpoint: folder, built-in model (smollm2, tiny) or "
                              "Hub id."),
    cumpt: Path | None = typer.Option(None, "--cumpt", help="cumpt.json from `taosr1 calibrate` (default: argmax tiers)."),
    scheme: str | None = typer.Option(None, "--scheme", help="Label scheme (default: the model folder's or the CumPT "
                                      "file's, else taosr1)."),
    backend: str = typer.Option("hf", "--backend"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8080, "--port", min=0, max=65535),
    device: str = typer.Option("auto", "--device"),
    max_batch: int = typer.Option(16, "--max-batch", min=1, help="Pairs per forward pass."),
    max_wait: float = typer.Option(0.01, "--max-wait", min=0, max=MAX_WAIT_S, callback=finite,
                                   help="Seconds to wait for a batch to fill."),
    max_pairs: int = typer.Option(64, "--max-pairs", min=1, help="Pairs per request."),
    max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", min=1),
    exit_after: float | None = typer.Option(None, "--exit-after", min=0, callback=finite,
                                            help="Stop by itself after this many seconds."),
    request_timeout: float = typer.Option(30.0, "--request-timeout", min=0.1, max=3600, callback=finite,
                                          help="Seconds a client has to send one request's headers and body."),
    explain_mode: str = typer.Option("never", "--explain-mode", help="Default for requests: never, always, or auto "
                                     "(pairs whose CumPT tier margin is below --explain-margin; needs --cumpt). A "
                                     "request may name its own (\"explain\")."),
    explain_margin: float = option(ExplainSettings, "explain_margin", min=0, max=1),
    max_explain_tokens: int = option(ExplainSettings, "max_explain_tokens", min=1),
) -> None:
    """Serve POST /v1/score (pairs -> probs, label, tier, score[, margin][, explanation]) and GET /healthz."""
    from taosr1_plugins.deploy.serving.score_server import Limits
    from taosr1_plugins.deploy.serving.score_server import serve as run_server
    from taosr1_plugins.cli import fail, in_vllm_environment

    in_vllm_environment(backend)
    try:
        run_server(model, cumpt_path=str(cumpt) if cumpt else None, scheme=scheme, backend=backend, host=host,
                   port=port, device=device, max_batch=max_batch, max_wait=max_wait,
                   limits=Limits(max_pairs=max_pairs, max_body_bytes=max_body_bytes), exit_after=exit_after,
                   request_timeout=request_timeout, explain=explain_mode, explain_margin=explain_margin,
                   max_explain_tokens=max_explain_tokens)
    except ValueError as exc:  # a bad --explain-mode, before the model loads
        fail(str(exc), 2)


def serve_chat(
    model: str = typer.Option(..., "--model", help="Checkpoint folder, built-in model (smollm2, tiny) or Hub id."),
    served_model_name: str | None = typer.Option(None, "--served-model-name", help="Model id clients send (default: --model)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype"),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Requests per generate call."),
    batch_wait: float = typer.Option(0.01, "--batch-wait", min=0, max=MAX_WAIT_S, callback=finite,
                                     help="Seconds to wait to fill a batch."),
    max_tokens_limit: int = typer.Option(4096, "--max-tokens-limit", min=1),
    max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", min=1),
    max_prompt_chars: int = typer.Option(200_000, "--max-prompt-chars", min=1),
    max_messages: int | None = typer.Option(None, "--max-messages", min=1, help="Messages per request (default: "
                                            "256, openai_server.MAX_MESSAGES)."),
    max_prompt_tokens: int | None = typer.Option(None, "--max-prompt-tokens", min=1, help="Prompt tokens per request "
                                                 "(default: the model's context length)."),
    request_timeout: float = typer.Option(30.0, "--request-timeout", min=0.1, max=3600, callback=finite,
                                          help="Seconds a client has to send one request's headers and body."),
    exit_after: float | None = typer.Option(None, "--exit-after", min=0, callback=finite,
                                            help="Stop by itself after this many seconds."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve a local model behind an OpenAI-compatible chat endpoint (POST /v1/chat/completions, GET /v1/models,
    GET /health): a local teacher, and what the tests talk to."""
    from taosr1_plugins.deploy.serving.openai_server import serve as run_server

    run_server(model, served_model_name=served_model_name, host=host, port=port, device=device, dtype=dtype,
               max_batch=max_batch, batch_wait=batch_wait, max_tokens_limit=max_tokens_limit,
               max_body_bytes=max_body_bytes, max_prompt_chars=max_prompt_chars, max_prompt_tokens=max_prompt_tokens,
               **({"max_messages": max_messages} if max_messages else {}), request_timeout=request_timeout,
               exit_after=exit_after, log_level=log_level)


def evaluate(
    scores: list[Path] = typer.Option(..., "--scores", help="Score files, in stage order (repeat the option)."),
    report: Path = typer.Option(..., "--report", help="HTML report to write."),
    cumpt: Path | None = typer.Option(None, "--cumpt", help="Decide by CumPT tiers (else argmax)."),
    name: list[str] = typer.Option([], "--name", help="Stage names, one per --scores (default: file names)."),
    irrelevant: str | None = typer.Option(None, "--irrelevant", help="Levels counted as irrelevant for over-recall, "
                                          "e.g. C,I (default: the scheme's lowest); every other tier is shown."),
    data: Path | None = typer.Option(None, "--data", help="Records of the scored pairs: their queries, for the ranking "
                                     "view of score files written before rows kept the query."),
) -> None:
    """Macro-F1, accuracy, per-level P/R/F1, confusion, QWK, tag slices, NDCG, over-recall, ECE and tier
    stability, with plots, as one HTML file."""
    from rich.console import Console
    from taosr1_plugins.core.display import print_table

    from taosr1_plugins.evaluation.metrics import metrics_table
    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.evaluation.report import write_report
    from taosr1_plugins.cli import fail

    check_outputs([report], [*scores, cumpt, data])
    if name and len(name) != len(scores):
        fail(f"{len(name)} --name values for {len(scores)} --scores files", 2)
    from taosr1_plugins.evaluation.over_recall import parse_levels

    queries = None
    if data is not None:
        from taosr1_plugins.data.validation import read_checked_records

        queries = {record.id: record.query for record in read_checked_records(data)}
    stages = write_report(scores, report, cumpt=cumpt, names=name or None, irrelevant=parse_levels(irrelevant),
                          queries=queries)
    console = Console(stderr=True)
    print_table(metrics_table({s.name: s.metrics for s in stages}, stages[0].scores.scheme, title="scores"), console)

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for stage in stages:
        calibrated = "" if stage.ece_calibrated is None else f" -> {stage.ece_calibrated:.3f} calibrated"
        typer.echo(f"{stage.name}: {stage.decision} macro-F1 {stage.metrics.macro_f1:.3f} (argmax "
                   f"{stage.argmax_metrics.macro_f1:.3f}), accuracy {stage.metrics.accuracy:.3f}, QWK {stage.metrics.qwk:.3f}, "
                   f"NDCG@10 {fmt(stage.ranking.ndcg_at_10)}, NDCG {fmt(stage.ranking.ndcg)} "
                   f"({stage.ranking.queries} queries), over-recall {fmt(stage.over_recall)}, ECE {stage.ece:.3f}{calibrated}")
    console.print(f"report: {report}")


def post_cot(
    data: Path = typer.Option(..., "--data", help="Records with cot, or rows with responses (see --responses)."),
    out: Path = typer.Option(..., "--out"),
    responses: bool = typer.Option(False, "--responses", help="Reorder the chosen/rejected/response fields of each row."),
    scheme: str | None = typer.Option(None, "--scheme", help="Scheme of the responses (with --responses)."),
) -> None:
    """Convert think-then-answer data to the answer-first (post-CoT) form."""
    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.deploy.post_cot import convert_records, convert_responses
    from taosr1_plugins.cli import fail

    check_outputs([out], [data])
    if responses:
        if not scheme:
            fail("--responses needs --scheme", 2)
        result = convert_responses(data, out, scheme)
    else:
        result = convert_records(data, out)
    already = f"{result.already_answer_first} already answer-first, " if responses else ""
    typer.echo(f"{result.rows} rows, {result.converted} responses answer-first, {already}"
               f"{result.kept_as_is} left as they were (malformed) -> {out}")
    if responses and (warning := result.nothing_reordered()):
        typer.secho(f"warning: {warning}", fg="yellow", err=True)


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("calibrate")(calibrate)
    app.command("serve")(serve)
    app.command("serve-chat")(serve_chat)
    app.command("eval")(evaluate)
    app.command("post-cot")(post_cot)
