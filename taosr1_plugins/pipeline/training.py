"""The main job's side of the training-backend seam: a :class:`TrainingJob` per training stage from the run
config, the backend's checks before the first stage, and the prompt style and label scheme written into every
model folder a backend leaves, by the runner and not by each backend, so none can forget them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.model_scheme import write_model_scheme
from taosr1_plugins.core.prompts import write_prompt_style
from taosr1_plugins.errors import first_problem
from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.context import RunContext
from taosr1_plugins.training.backend import DryRunStop, SettingError, TrainingBackend, TrainingJob, get_backend, parse_options


def stage_backend(config: RunConfig, stage: str) -> TrainingBackend:
    """The backend ``<stage>.framework`` names; a :class:`SettingError` when it does not train ``stage``."""
    backend = get_backend(getattr(config, stage).framework)
    if stage not in backend.stages:
        raise SettingError("framework", f"{backend.name!r} does not train {stage}; it trains {', '.join(backend.stages)}")
    return backend


def grpo_settings(config: RunConfig):
    """The GRPO recipe with ``grpo.overrides`` on top, as the stage reads it; a bad key is a :class:`SettingError`."""
    from taosr1_plugins.grpo.config import load_grpo_settings

    try:
        return load_grpo_settings(config.resolve(config.grpo.recipe), **{"format": config.format, **config.grpo.overrides})
    except ValidationError as exc:
        field, message = first_problem(exc)
        raise SettingError(f"overrides.{field}", f"{message} (the recipe {config.grpo.recipe} with grpo.overrides)") from None


def grpo_start_model(ctx: RunContext) -> Path:
    return ctx.model_dir("dpo") if ctx.config.dpo.enabled else ctx.model_dir("sft")


def training_job(
    ctx: RunContext, stage: str, *, model: str | Path, data: dict[str, Any], work_dir: Path | None = None,
    overrides: dict[str, Any] | None = None, bf16: bool = False, fmt: ResponseFormat | None = None,
    label_weight: float | None = None,
) -> tuple[TrainingBackend, TrainingJob]:
    """Stage ``stage``'s backend and job; ``work_dir`` defaults to the stage's folder, whose ``model`` folder the
    backend writes. ``overrides`` replaces the section's (the direct-answer baseline adds its own); ``fmt`` and
    ``label_weight`` replace the run's response format and sft.label_weight (the post-CoT conversion's)."""
    config = ctx.config
    section = getattr(config, stage)
    backend = stage_backend(config, stage)
    work_dir = work_dir or ctx.path(stage)
    method: dict[str, Any] = {}
    if stage == "sft":
        method["label_weight"] = section.label_weight if label_weight is None else label_weight
    if stage == "grpo":
        # a trace pass@N and evaluation let finish must not be cut during RL (backends that set their own budget)
        method = {"settings": grpo_settings(config), "new_token_budgets": (config.passn.max_new_tokens, config.eval.max_new_tokens)}
    recipe = getattr(section, "recipe", None) if stage != "grpo" else None
    job = TrainingJob(
        stage=stage, model=str(model), output_dir=work_dir / "model", work_dir=work_dir, fmt=fmt or config.format,
        style=config.prompt, scheme=ctx.scheme, seed=config.seed, recipe=config.resolve(recipe) if recipe else None,
        overrides=dict(section.overrides if overrides is None else overrides), bf16=bf16,
        options=parse_options(backend, section.options), data=data, method=method, resolve=config.resolve,
    )
    return backend, job


def check_training(config: RunConfig, stages: Sequence[str]) -> None:
    """Before the first stage: each stage's backend checks its own (its framework's config, its environment);
    a :class:`SettingError` names the stage it came from."""
    ctx = RunContext(config)
    for stage in stages:
        try:
            backend, job = training_job(ctx, stage, model=config.model.base, data={})
            backend.check(job)
        except SettingError as exc:
            exc.stage = stage
            raise


def train(backend: TrainingBackend, job: TrainingJob) -> dict[str, Any]:
    """Train, then write the run's prompt style and label scheme into the model folder: a framework writes
    weights, config and tokenizer only (OpenRLHF's save_model among them). A dry run leaves a model folder that
    names them too, where the job it printed will save the policy."""
    try:
        summary = backend.train(job)
    except DryRunStop:
        _write_prompt(job)
        raise
    _write_prompt(job)
    return summary


def _write_prompt(job: TrainingJob) -> None:
    job.output_dir.mkdir(parents=True, exist_ok=True)
    write_prompt_style(job.output_dir, job.style)  # served with the prompt it learnt
    write_model_scheme(job.output_dir, job.scheme)  # and scored with the levels it answers with
