"""Runs the main job's stages in order, skipping those whose settings and inputs are unchanged."""

from __future__ import annotations

import time

from rich.markup import escape

from taosr1_plugins.core.noise import hide_known_noise
from taosr1_plugins.core.vllm.engine import close_engine

from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.context import RunContext
from taosr1_plugins.pipeline.degenerate import print_warnings, refuse_under_strict, stage_warnings
from taosr1_plugins.pipeline.manifest import Manifest, fingerprint
from taosr1_plugins.pipeline.preflight import check_run_config
from taosr1_plugins.pipeline.progress import RunOutput, eta_text, job_eta, stage_line, write_stage_summary
from taosr1_plugins.pipeline.stage_process import MODEL_STAGES, isolation_wanted, run_stage_in_process, stage_python
from taosr1_plugins.pipeline.stages import STAGE_NAMES, STAGES, DryRunStop

__all__ = ["STAGE_NAMES", "preflight", "run_pipeline"]


def is_current(ctx: RunContext, name: str) -> bool:
    """Whether stage ``name`` finished with the settings and inputs it would have now."""
    stage = next(stage for stage in STAGES if stage.name == name)
    return ctx.manifest.is_done(name, fingerprint(stage.settings(ctx.config), stage.inputs(ctx)))


def preflight(config: RunConfig, *, until_stage: str | None = None, source: str | None = None) -> tuple[str, ...]:
    """What `taosr1 run` checks before its first stage (alone: `taosr1 run --check`); the stages it covered."""
    last = STAGE_NAMES.index(until_stage) if until_stage else len(STAGE_NAMES) - 1
    stages = tuple(STAGE_NAMES[: last + 1])
    check_run_config(config, source, stages=stages)
    return stages


def run_pipeline(
    config: RunConfig, *, from_stage: str | None = None, until_stage: str | None = None, source: str | None = None,
    strict: bool = False, output: RunOutput | None = None,
) -> Manifest:
    """Run the stages up to ``until_stage``; first check every path, plugin and training backend they need
    (earlier stages re-run when stale), so a bad setting fails before the first stage, naming ``source``.

    A stage that finished with a degenerate result (pipeline/degenerate.py) warns, also when skipped later;
    ``strict`` stops the run there with a DegenerateStageError (exit 2).

    Each stage ends in one line (pipeline/progress.py) and writes its full summary to STAGE/stage_summary.json;
    a stage about to run is announced with ``stage k/N`` and the job's ETA from the previous run's times."""
    out = output or RunOutput()
    preflight(config, until_stage=until_stage, source=source)
    hide_known_noise(import_transformers=False)
    ctx = RunContext(config)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    previous = {name: dict(entry) for name, entry in ctx.manifest.data.get("stages", {}).items()}
    ctx.manifest.start_run(config.model_dump(mode="json"), config.seed)
    last = STAGE_NAMES.index(until_stage) if until_stage else len(STAGE_NAMES) - 1
    planned = [stage for stage in STAGES[: last + 1] if stage.enabled(config)]
    total = len(planned)
    isolated = isolation_wanted(config)
    index = 0
    for stage in STAGES[: last + 1]:
        if not stage.enabled(config):
            out.say(f"[dim]- {stage.name}: disabled in the config[/dim]")
            continue
        index += 1
        forced = from_stage is not None and STAGE_NAMES.index(stage.name) >= STAGE_NAMES.index(from_stage)
        stage_fingerprint = fingerprint(stage.settings(config), stage.inputs(ctx))
        if not forced and ctx.manifest.is_done(stage.name, stage_fingerprint):
            entry = ctx.manifest.stage(stage.name)
            # a run directory from before the checks has none recorded: asked of its outputs now
            warnings = entry["warnings"] if "warnings" in entry else stage_warnings(ctx, stage.name, entry.get("outputs", {}))
            out.say("[dim]" + escape(stage_line(stage.name, index, total, seconds=None, outputs=entry.get("outputs"),
                                                skipped=True)) + "[/dim]")
            out.record(stage.name, "skipped", entry.get("seconds"), entry.get("outputs"), warnings)
        else:
            eta = job_eta(previous, [later.name for later in planned[index - 1:]])
            out.rule(f"[bold]{stage.name}[/bold] · stage {index}/{total} · {eta_text(eta)}")
            # transformers only where the stage loads a model in this process (an isolated stage's child hides its own)
            hide_known_noise(import_transformers=stage.name in MODEL_STAGES and not isolated)
            ctx.path(stage.name).mkdir(parents=True, exist_ok=True)
            ctx.manifest.record(stage.name, status="running")
            started = time.perf_counter()
            try:
                if (python := stage_python(config, stage.name)) is not None:  # vLLM runs in its own environment
                    outputs = run_stage_in_process(stage.name, config, python)
                elif isolated and stage.name in MODEL_STAGES:
                    outputs = run_stage_in_process(stage.name, config)
                else:
                    try:
                        outputs = stage.run(ctx)
                    finally:  # a vLLM engine this stage opened here holds its workers and memory until shut down
                        close_engine()
            except DryRunStop as stop:
                ctx.manifest.record(stage.name, status="dry_run", note=str(stop))
                out.warn(f"[yellow]{stage.name}: {escape(str(stop))}[/yellow]")
                out.record(stage.name, "dry_run", None, None, [str(stop)])
                break
            except BaseException as exc:
                ctx.manifest.record(stage.name, status="failed", error=f"{type(exc).__name__}: {exc}")
                raise
            seconds = round(time.perf_counter() - started, 1)
            warnings = stage_warnings(ctx, stage.name, outputs)
            ctx.manifest.record(stage.name, status="done", fingerprint=stage_fingerprint, seconds=seconds,
                                outputs=outputs, warnings=warnings)
            summary_file = write_stage_summary(ctx.path(stage.name), {
                "stage": stage.name, "index": index, "of": total, "status": "done", "seconds": seconds,
                "finished_at": ctx.manifest.stage(stage.name).get("updated_at"), "outputs": outputs, "warnings": warnings,
            })
            out.say("[green]" + escape(stage_line(stage.name, index, total, seconds=seconds, outputs=outputs)) + "[/green]")
            out.record(stage.name, "ran", seconds, outputs, warnings, summary_file)
        print_warnings(out.console, stage.name, warnings)
        if strict:
            refuse_under_strict(stage.name, warnings)
    return ctx.manifest
