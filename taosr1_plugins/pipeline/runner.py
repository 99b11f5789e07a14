"""Runs the main job's stages in order, skipping those whose settings and inputs are unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from ..jsonl import atomic_write, read_jsonl, write_jsonl
from ..records import Record
from .config import RunConfig
from .manifest import Manifest, fingerprint

console = Console()


@dataclass
class Stage:
    name: str
    run: Callable[[RunContext], dict[str, Any]]
    settings: Callable[[RunConfig], Any]
    inputs: Callable[[RunContext], list[Path]]


class RunContext:
    def __init__(self, config: RunConfig):
        self.config = config
        # Relative run directories are relative to where the user runs the command, like output_dir in
        # LLaMA-Factory recipes.
        self.run_dir = Path(config.run_dir).resolve()
        self.manifest = Manifest(self.run_dir)

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    @property
    def scheme(self):
        from ..schemes import get_scheme
        from ..importing import get_importer

        data = self.config.data
        return get_scheme(data.scheme or get_importer(data.source).default_scheme)

    def split_path(self, name: str) -> Path:
        return self.path("data", f"{name}.jsonl")

    def base_model(self) -> Path | str:
        from ..models import prepare_smollm2, prepare_tiny

        base = self.config.model.base
        if base == "smollm2":
            return prepare_smollm2()
        if base == "tiny":
            return prepare_tiny()
        return base

    def sft_model(self) -> Path:
        return self.path("sft", "model")


# --- stages -----------------------------------------------------------------------------------------


def _input_file(config: RunConfig) -> Path:
    if config.data.input is None:
        from ..data_files import esci_sample_path

        return esci_sample_path()
    return config.resolve(config.data.input)


def run_import(ctx: RunContext) -> dict[str, Any]:
    from ..importing import import_records

    data = ctx.config.data
    records = list(import_records(data.source, _input_file(ctx.config), data.scheme, data.limit))
    count = write_jsonl(ctx.path("data", "all.jsonl"), records)
    return {"records": count, "input": str(_input_file(ctx.config))}


def run_split(ctx: RunContext) -> dict[str, Any]:
    from ..splits import GROUP_KEYS, split_groups

    records = read_jsonl(ctx.path("data", "all.jsonl"), Record)
    parts = split_groups(records, GROUP_KEYS[ctx.config.split.by], ctx.config.split.ratios, seed=ctx.config.seed)
    sizes = {}
    for name, part in zip(("train", "dev", "test"), parts):
        sizes[name] = write_jsonl(ctx.split_path(name), part)
    return sizes


def run_cot(ctx: RunContext) -> dict[str, Any]:
    from ..cot import CotOptions, generate_cot
    from ..teachers import get_teacher

    cot = ctx.config.cot
    train = read_jsonl(ctx.split_path("train"), Record)
    report = generate_cot(
        train,
        get_teacher(cot.teacher, **cot.options),
        ctx.path("cot", "train.jsonl"),
        pool=train,
        options=CotOptions(k=cot.k, retries=cot.retries, batch_size=cot.batch_size, fmt=ctx.config.format),
        teacher_name=cot.teacher,
        # a re-run of this stage means its settings or inputs changed: the old output is stale
        overwrite=True,
        progress=True,
    )
    return {key: value for key, value in report.to_dict().items() if key != "per_level"}


def run_export(ctx: RunContext) -> dict[str, Any]:
    from ..integrations.llamafactory.export import export_llamafactory

    result = export_llamafactory(
        ctx.path("cot", "train.jsonl"), ctx.path("lf_data"), name="taosr1_train", fmt=ctx.config.format
    )
    return {"dataset": result.name, "dataset_dir": str(ctx.path("lf_data")), "records": result.records}


def _llamafactory_args(ctx: RunContext) -> dict[str, Any]:
    sft = ctx.config.sft
    recipe = ctx.config.resolve(sft.recipe)
    args = yaml.safe_load(recipe.read_text()) or {}
    args.update(sft.overrides)
    args.update(
        model_name_or_path=str(ctx.base_model()),
        dataset_dir=str(ctx.path("lf_data")),
        dataset=ctx.manifest.stage("export").get("outputs", {}).get("dataset", "taosr1_train"),
        output_dir=str(ctx.sft_model()),
        seed=ctx.config.seed,
    )
    return args


def _launcher_command(launcher: str, args_file: Path) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if launcher == "cli":
        cli = bin_dir / "llamafactory-cli"
        return [str(cli) if cli.exists() else (shutil.which("llamafactory-cli") or "llamafactory-cli"), "train", str(args_file)]
    return [sys.executable, "-m", "taosr1_plugins.integrations.llamafactory.train", str(args_file)]


def run_sft(ctx: RunContext) -> dict[str, Any]:
    args = _llamafactory_args(ctx)
    args_file = ctx.path("sft", "train.yaml")
    with atomic_write(args_file) as fh:
        yaml.safe_dump(args, fh, sort_keys=False)
    command = _launcher_command(ctx.config.sft.launcher, args_file)
    console.print(f"[bold]SFT[/bold]: {' '.join(command)}  (log: {ctx.path('sft', 'train.log')})")
    started = time.perf_counter()
    with open(ctx.path("sft", "train.log"), "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if "'loss'" in line or "Error" in line:
                console.print("  " + line.strip()[-160:], highlight=False)
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"llamafactory training failed (exit {code}); see {ctx.path('sft', 'train.log')}")
    return {**_training_summary(ctx.sft_model()), "wall_seconds": round(time.perf_counter() - started, 1)}


def _training_summary(output_dir: Path) -> dict[str, Any]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state.get("log_history", []) if "loss" in entry]
    final = next((e for e in reversed(state.get("log_history", [])) if "train_runtime" in e), {})
    steps = state.get("global_step") or 0
    return {
        "steps": steps,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "train_loss": final.get("train_loss"),
        "train_runtime": final.get("train_runtime"),
        "seconds_per_step": round(final["train_runtime"] / steps, 2) if steps and "train_runtime" in final else None,
    }


def run_eval(ctx: RunContext) -> dict[str, Any]:
    from ..evaluate_models import evaluate_model
    from ..evaluation import metrics_table

    ev = ctx.config.eval
    records = read_jsonl(ctx.split_path(ev.split), Record)[: ev.limit]
    models: dict[str, Path | str] = {}
    if ev.zero_shot_baseline:
        models["base (zero-shot)"] = ctx.base_model()
    models["SFT-CoT"] = ctx.sft_model()
    results, summary = {}, {}
    for label, model in models.items():
        slug = label.split()[0].lower().replace("-", "_")
        metrics = evaluate_model(
            model,
            records,
            ctx.scheme,
            ctx.path("eval", f"predictions_{slug}.jsonl"),
            fmt=ctx.config.format,
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
        )
        results[label] = metrics
        summary[label] = metrics.to_dict()
    with atomic_write(ctx.path("eval", "metrics.json")) as fh:
        json.dump(summary, fh, indent=2)
    console.print(metrics_table(results, ctx.scheme, title=f"evaluation on {ev.split} ({len(records)} pairs)"))
    return {label: {"macro_f1": m.macro_f1, "accuracy": m.accuracy, "n": m.n} for label, m in results.items()}


STAGES = (
    Stage("import", run_import, lambda c: c.data.model_dump(), lambda ctx: [_input_file(ctx.config)]),
    Stage("split", run_split, lambda c: [c.split.model_dump(), c.seed], lambda ctx: [ctx.path("data", "all.jsonl")]),
    Stage(
        "cot",
        run_cot,
        lambda c: [c.cot.model_dump(), str(c.format)],
        lambda ctx: [ctx.split_path("train")],
    ),
    Stage("export", run_export, lambda c: str(c.format), lambda ctx: [ctx.path("cot", "train.jsonl")]),
    Stage(
        "sft",
        run_sft,
        lambda c: [c.sft.model_dump(), c.model.model_dump(), c.seed],
        lambda ctx: [ctx.path("lf_data"), ctx.config.resolve(ctx.config.sft.recipe)],
    ),
    Stage(
        "eval",
        run_eval,
        lambda c: c.eval.model_dump(),
        lambda ctx: [ctx.split_path(ctx.config.eval.split), ctx.sft_model() / "model.safetensors"],
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def run_pipeline(config: RunConfig, *, from_stage: str | None = None, until_stage: str | None = None) -> Manifest:
    ctx = RunContext(config)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.manifest.start_run(config.model_dump(mode="json"), config.seed)
    forced = False
    for stage in STAGES:
        forced = forced or stage.name == from_stage
        stage_fingerprint = fingerprint(stage.settings(config), stage.inputs(ctx))
        if not forced and ctx.manifest.is_done(stage.name, stage_fingerprint):
            console.print(f"[dim]✓ {stage.name}: unchanged, skipped[/dim]")
        else:
            console.rule(f"[bold]{stage.name}")
            ctx.path(stage.name).mkdir(parents=True, exist_ok=True)
            ctx.manifest.record(stage.name, status="running")
            started = time.perf_counter()
            try:
                outputs = stage.run(ctx)
            except BaseException as exc:
                ctx.manifest.record(stage.name, status="failed", error=f"{type(exc).__name__}: {exc}")
                raise
            seconds = round(time.perf_counter() - started, 1)
            ctx.manifest.record(stage.name, status="done", fingerprint=stage_fingerprint, seconds=seconds, outputs=outputs)
            console.print(f"[green]✓ {stage.name}[/green] in {seconds:.1f}s: {json.dumps(outputs, default=str)[:300]}")
        if stage.name == until_stage:
            break
    return ctx.manifest
