"""Runs the main job's stages in order, skipping those whose settings and inputs are unchanged."""

from __future__ import annotations

import json
import time

from rich.console import Console

from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.context import RunContext
from taosr1_plugins.pipeline.degenerate import print_warnings, refuse_under_strict, stage_warnings
from taosr1_plugins.pipeline.manifest import Manifest, fingerprint
from taosr1_plugins.pipeline.preflight import check_run_config
from taosr1_plugins.pipeline.stage_process import MODEL_STAGES, isolation_wanted, run_stage_in_process
from taosr1_plugins.pipeline.stages import STAGE_NAMES, STAGES, DryRunStop

__all__ = ["STAGE_NAMES", "preflight", "run_pipeline"]

console = Console()


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
    strict: bool = False,
) -> Manifest:
    """Run the stages up to ``until_stage``; first check every path, plugin and training backend they need
    (earlier stages re-run when stale), so a bad setting fails before the first stage, naming ``source``.

    A stage that finished with a degenerate result (pipeline/degenerate.py) warns, also when skipped later;
    ``strict`` stops the run there with a DegenerateStageError (exit 2)."""
    preflight(config, until_stage=until_stage, source=source)
    ctx = RunContext(config)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.manifest.start_run(config.model_dump(mode="json"), config.seed)
    forced = False
    isolated = isolation_wanted(config)
    for stage in STAGES:
        forced = forced or stage.name == from_stage
        if not stage.enabled(config):
            console.print(f"[dim]- {stage.name}: disabled in the config[/dim]")
            continue
        stage_fingerprint = fingerprint(stage.settings(config), stage.inputs(ctx))
        if not forced and ctx.manifest.is_done(stage.name, stage_fingerprint):
            console.print(f"[dim]✓ {stage.name}: unchanged, skipped[/dim]")
            entry = ctx.manifest.stage(stage.name)
            # a run directory from before the checks has none recorded: asked of its outputs now
            warnings = entry["warnings"] if "warnings" in entry else stage_warnings(ctx, stage.name, entry.get("outputs", {}))
        else:
            console.rule(f"[bold]{stage.name}")
            ctx.path(stage.name).mkdir(parents=True, exist_ok=True)
            ctx.manifest.record(stage.name, status="running")
            started = time.perf_counter()
            try:
                if isolated and stage.name in MODEL_STAGES:
                    outputs = run_stage_in_process(stage.name, config)
                else:
                    outputs = stage.run(ctx)
            except DryRunStop as stop:
                ctx.manifest.record(stage.name, status="dry_run", note=str(stop))
                console.print(f"[yellow]{stage.name}: {stop}[/yellow]")
                break
            except BaseException as exc:
                ctx.manifest.record(stage.name, status="failed", error=f"{type(exc).__name__}: {exc}")
                raise
            seconds = round(time.perf_counter() - started, 1)
            warnings = stage_warnings(ctx, stage.name, outputs)
            ctx.manifest.record(stage.name, status="done", fingerprint=stage_fingerprint, seconds=seconds,
                                outputs=outputs, warnings=warnings)
            console.print(f"[green]✓ {stage.name}[/green] in {seconds:.1f}s: {json.dumps(outputs, default=str)[:300]}")
        print_warnings(console, stage.name, warnings)
        if strict:
            refuse_under_strict(stage.name, warnings)
        if stage.name == until_stage:
            break
    return ctx.manifest
