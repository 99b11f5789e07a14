"""`taosr1 grpo prepare | train`: stage 3, GRPO with the relevance reward and difficulty-based sampling.

`prepare` writes the OpenRLHF prompt files (one per difficulty bucket, with their probabilities) that
recipes/openrlhf/grpo_taosr1.sh reads; `train --backend trl` runs GRPO with TRL on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

DATA_HELP = "Records JSONL (taosr1 data import output), with gold labels."
DIFFICULTY_HELP = "Per-prompt pass@N difficulty JSONL (taosr1 passn); without it every prompt is 'unknown'."
CONFIG_HELP = "GRPO settings YAML (reward, sampling, dynamic_sampling, steps, ...); see recipes/trl/grpo_tiny.yaml."


def _load(data: Path, difficulty: Path | None):
    from taosr1_plugins.passn.difficulty import DifficultyRow
    from taosr1_plugins.core.jsonl import read_jsonl
    from taosr1_plugins.core.records import Record

    records = read_jsonl(data, Record)
    rows = read_jsonl(difficulty, DifficultyRow) if difficulty else []
    return records, rows


def _settings_source(config: Path | None) -> str:
    return f"--config {config}" if config else "the defaults (no --config)"


def _prepare_settings(config: Path | None, run_config: Path | None):
    """(GRPO settings, prompt style, where a prompt budget was set) as the main job's GRPO stage has them with
    ``run_config``: its format, prompt, GRPO recipe and overrides, and the completion budget raised to pass@N's
    and evaluation's; else the GRPO settings file's (or the defaults) and the default prompt."""
    from taosr1_plugins.core.prompts import PromptStyle
    from taosr1_plugins.grpo.config import load_grpo_settings

    if run_config is None:
        settings = load_grpo_settings(config)
        return settings, PromptStyle(), (f"--config {config}" if "max_prompt_length" in settings.model_fields_set else None)
    if config is not None:
        raise typer.BadParameter("give the GRPO settings through --run-config's grpo.recipe, not beside it",
                                 param_hint="--config")
    from taosr1_plugins.integrations.openrlhf.launch import with_run_lengths
    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.training import grpo_settings

    run = load_config(run_config)
    settings = with_run_lengths(grpo_settings(run), run.grpo.overrides, run.passn.max_new_tokens, run.eval.max_new_tokens)
    budget_set = "max_prompt_length" in settings.model_fields_set
    return settings, run.prompt, (f"{run_config}'s grpo.recipe or grpo.overrides" if budget_set else None)


@app.command("prepare")
def prepare(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help=DATA_HELP),
    difficulty: Path = typer.Option(None, "--difficulty", exists=True, dir_okay=False, help=DIFFICULTY_HELP),
    out_dir: Path = typer.Option(..., "--out-dir", help="Folder for the OpenRLHF prompt files."),
    config: Path = typer.Option(None, "--config", exists=True, dir_okay=False, help=CONFIG_HELP),
    run_config: Path = typer.Option(None, "--run-config", exists=True, dir_okay=False, help="The main job's config "
                                    "(taosr1 run): its format, prompt, grpo.recipe/overrides and length budgets, as its "
                                    "GRPO stage writes them."),
    model: Path = typer.Option(None, "--model", exists=True, file_okay=False, help="The policy the job starts from "
                               "(POLICY): the prompt it was trained with, and its tokenizer to size the prompt budget."),
) -> None:
    """Choose GRPO prompts by difficulty and write OpenRLHF prompt JSONL files + probabilities."""
    from taosr1_plugins.integrations.openrlhf.launch import prepare_launch
    from taosr1_plugins.grpo.prompts import select_prompts
    from taosr1_plugins.core.schemes import scheme_of

    from taosr1_plugins import plugins

    settings, style, budget_set_by = _prepare_settings(config, run_config)
    # the Ray workers would refuse an unregistered reward only once the job has started
    plugins.get("reward", settings.reward.function)
    records, rows = _load(data, difficulty)
    labelled, selection = select_prompts(records, rows, settings)
    if not labelled:
        raise typer.BadParameter(f"{data} has no labelled records", param_hint="--data")
    if not selection.chosen:
        from taosr1_plugins.errors import UserError
        from taosr1_plugins.grpo.difficulty_mix import why_nothing_kept

        # the cause is the difficulty file or the sampling settings, whichever it is: named, not guessed
        source = f"{run_config}'s grpo.recipe and grpo.overrides" if run_config else _settings_source(config)
        raise UserError(why_nothing_kept(selection.summary, rows, source))
    if model is None:  # OpenRLHF cuts what does not fit from the prompt's left: nothing checks that here
        typer.secho("warning: without --model the prompts are not sized to the policy's tokenizer, and the prompt is "
                    "the default one, not the one the policy was trained with", fg="yellow", err=True)
    manifest = prepare_launch(labelled, rows, scheme_of(labelled[0]), settings, out_dir, model, style=style,
                              budget_set_by=budget_set_by)
    typer.echo(json.dumps({k: manifest[k] for k in ("rows", "prompt_probs", "selection")}, indent=2))
    typer.echo(f"wrote {out_dir}/openrlhf_prompts.env and {out_dir}/reward.yaml for recipes/openrlhf/grpo_taosr1.sh")


@app.command("train")
def train(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help=DATA_HELP),
    difficulty: Path = typer.Option(None, "--difficulty", exists=True, dir_okay=False, help=DIFFICULTY_HELP),
    out_dir: Path = typer.Option(..., "--out-dir", help="Where the model, metrics.jsonl and summary.json go."),
    model: str = typer.Option("smollm2", "--model", help="A built-in model (smollm2, tiny), a checkpoint folder (e.g. the "
                              "DPO model) or a Hub id."),
    backend: str = typer.Option("trl", "--backend", help="trl (this machine). For OpenRLHF use `grpo prepare` + the recipe."),
    config: Path = typer.Option(None, "--config", exists=True, dir_okay=False, help=CONFIG_HELP),
    steps: int = typer.Option(None, "--steps", help="Override the number of GRPO steps."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N records."),
) -> None:
    """Run GRPO steps with the relevance reward and dynamic sampling; save the policy."""
    if backend != "trl":
        raise typer.BadParameter(
            "only 'trl' runs here; for OpenRLHF run `taosr1 grpo prepare` and recipes/openrlhf/grpo_taosr1.sh",
            param_hint="--backend",
        )
    from taosr1_plugins.core.model_scheme import write_model_scheme
    from taosr1_plugins.core.schemes import scheme_of
    from taosr1_plugins.core.models import resolve_model
    from taosr1_plugins.core.prompts import copy_prompt_style
    from taosr1_plugins.grpo.config import load_grpo_settings
    from taosr1_plugins.grpo.stalled import stalled_policy
    from taosr1_plugins.integrations.trl.run import run_grpo_trl

    # before any prompt is chosen: a DataError naming what is wrong with the model, exit 2
    policy = resolve_model(model)
    settings = load_grpo_settings(config, steps=steps)
    records, rows = _load(data, difficulty)
    summary = run_grpo_trl(policy, records[:limit], rows, out_dir, settings, settings_source=_settings_source(config))
    copy_prompt_style(policy, summary["model"])  # the policy is served with the prompt it was trained on
    if records:  # and scored with the levels it learnt to answer with
        write_model_scheme(summary["model"], scheme_of(records[0]))
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "selection"}, indent=2))
    if warning := stalled_policy(summary):
        typer.secho(f"warning: {warning}", fg="yellow", err=True)


@app.command("check-env")
def check_env(
    python: str = typer.Option("python3", "--python", help="The OpenRLHF environment's interpreter (grpo.options.python)."),
    reward_config: Path = typer.Option(None, "--reward-config", exists=True, dir_okay=False,
                                       help="reward.yaml to load there (default: the reward defaults)."),
) -> None:
    """Check the OpenRLHF environment as a Ray worker runs it: OpenRLHF 0.11.2, Ray, vLLM, DeepSpeed, the reward."""
    from taosr1_plugins.integrations.openrlhf.env import check_openrlhf_env

    report = check_openrlhf_env(python, Path(__file__).resolve().parents[2], reward_config)  # a UserError: exit 2
    typer.echo(json.dumps(report, indent=2))


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="grpo", help="Stage 3: GRPO with the relevance reward and difficulty-based sampling.")
