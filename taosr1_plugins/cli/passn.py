"""`taosr1 passn sample | difficulty | pairs`: stage 2 pass@N sampling, the difficulty file, DPO pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from taosr1_plugins.cli.options import option, parse_options
from taosr1_plugins.passn.config import PairOptions, PassnRunSettings, PassnShardSettings
from taosr1_plugins.passn.difficulty import DifficultyThresholds

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("sample")
def sample(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Built-in model (smollm2, tiny), checkpoint folder or Hub id (hf, vllm), "
                              "or served model name (openai)."),
    data: Path = typer.Option(..., "--data", help="Labelled records (JSONL), e.g. the SFT training prompts."),
    out: Path = typer.Option(..., "--out", help="Output samples JSONL (one row per prompt)."),
    n: int = option(PassnShardSettings, "n", min=1),
    temperature: float = option(PassnShardSettings, "temperature", min=0.0),
    top_p: float = option(PassnShardSettings, "top_p", min=0.0, max=1.0),
    max_new_tokens: int = option(PassnShardSettings, "max_new_tokens", min=1),
    seed: int = option(PassnShardSettings, "seed"),
    backend: str = option(PassnShardSettings, "backend"),
    batch_size: int = option(PassnRunSettings, "batch_size", min=1),
    shard_size: int = option(PassnShardSettings, "shard_size", min=1),
    backend_option: list[str] = typer.Option([], "--option", "-o", help="Backend option key=value (repeatable), e.g. -o device=cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over: replace a finished OUT or an interrupted run."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with ETA."),
) -> None:
    """Sample N responses per prompt; rerun the same command to resume an interrupted run."""
    from pydantic import ValidationError
    from rich.console import Console
    from taosr1_plugins.core.display import print_table

    from taosr1_plugins.data.validation import read_checked_records
    from taosr1_plugins.errors import OutputExistsError, UserError, first_problem
    from taosr1_plugins.passn.generation import GenerationError
    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.passn.sample import SettingsMismatchError, sample_passn
    from taosr1_plugins.cli import fail, file_errors, in_vllm_environment
    from taosr1_plugins import plugins
    from taosr1_plugins.core.models import resolve_model
    from taosr1_plugins.core.options import loads_checkpoint, offered, validate_options

    factory = plugins.get("generation_backend", backend)  # before any file is read; cli.main() reports an unknown name
    # strings: each backend's pydantic options convert them ("false", "4", ...)
    backend_options: dict = parse_options(backend_option)
    # by name: typer brings its own copy of click, whose ParameterSource is not click's
    if getattr(ctx.get_parameter_source("batch_size"), "name", None) == "COMMANDLINE":
        backend_options["batch_size"] = batch_size  # asked for: a backend without a batch size refuses it
    else:  # the default, handed over as the main job does: only to a backend that has a batch size
        backend_options = offered(factory, backend_options, batch_size=batch_size)
    # a backend that declares its options model names a bad option now, before a file is read or a model loads
    validate_options(factory, backend_options, what=f"generation backend {backend!r}", given={"model": model},
                     given_by="--model")
    in_vllm_environment(backend)
    with file_errors():
        check_outputs([out], [data])
        records = read_checked_records(data, require_label=True)
        if loads_checkpoint(factory):  # a built-in name, folder or Hub id; openai names a served model
            model = resolve_model(model)
    settings = PassnShardSettings(
        backend=backend, n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
        seed=seed, shard_size=shard_size,
    )
    try:
        summary = sample_passn(
            model, records, out, settings, backend_options=backend_options, overwrite=overwrite, progress=progress
        )
    except ValidationError as exc:  # a backend without a declared options model refused one: name it
        where, message = first_problem(exc, whole="")
        raise UserError(f"backend {backend!r} option {where!r}: {message}") from exc
    except (OutputExistsError, SettingsMismatchError) as exc:
        raise type(exc)(f"{exc} (use --overwrite)") from exc
    except GenerationError as exc:  # mid-run (endpoint down, backend missing): status 1, and how to go on
        fail(f"{exc}\nFinished shards are saved; rerun the same command to resume.")
    print_table(samples_table(summary), Console(stderr=True))


def samples_table(summary: dict):
    from rich.table import Table

    settings = summary["settings"]
    table = Table(title=f"pass@{settings['n']} of {summary['model']} ({summary['prompts']} prompts, {summary['seconds']}s)")
    for column in ("gold level", "prompts", "pass@1", f"pass@{settings['n']}", "majority acc."):
        table.add_column(column, justify="left" if column == "gold level" else "right")
    for level, s in summary["per_level"].items():
        table.add_row(level, str(s["prompts"]), f"{s['pass@1']:.3f}", f"{s['pass@n']:.3f}", f"{s['majority_accuracy']:.3f}")
    table.add_section()
    table.add_row("all", str(summary["prompts"]), f"{summary['pass@1']:.3f}", f"{summary['pass@n']:.3f}",
                  f"{summary['majority_accuracy']:.3f}")
    table.caption = f"format ok {summary['format_ok_rate']:.3f}; buckets {summary['buckets']}"
    return table


@app.command("difficulty")
def difficulty(
    samples: Path = typer.Option(..., "--samples", help="Samples JSONL from `taosr1 passn sample`."),
    out: Path = typer.Option(..., "--out", help="Difficulty JSONL (docs/difficulty.md)."),
    easy: float = option(DifficultyThresholds, "easy"),
    medium: float = option(DifficultyThresholds, "medium"),
) -> None:
    """Per-prompt difficulty (pass rate k/N and bucket) for stage 3's dynamic sampling."""
    from pydantic import ValidationError

    from taosr1_plugins.core.jsonl import check_outputs
    from taosr1_plugins.passn.sample import write_difficulty
    from taosr1_plugins.errors import UserError, first_problem

    check_outputs([out], [samples])
    try:
        thresholds = DifficultyThresholds(easy=easy, medium=medium)
    except ValidationError as exc:
        raise UserError(f"thresholds: {first_problem(exc)[1]}") from exc
    summary = write_difficulty(samples, out, thresholds)
    typer.echo(f"wrote {summary['prompts']} rows to {out}; buckets {summary['buckets']}", err=True)


@app.command("pairs")
def pairs(
    samples: Path = typer.Option(..., "--samples", help="Samples JSONL from `taosr1 passn sample`."),
    sft_data: Path | None = typer.Option(None, "--sft-data", help="SFT records with gold CoT (cot.jsonl)."),
    out_dir: Path = typer.Option(..., "--out-dir", help="Directory for both datasets and dataset_info.json."),
    name: str = option(PairOptions, "name"),
    max_pairs_per_prompt: int = option(PairOptions, "max_pairs_per_prompt", min=1),
    skip_all_correct: bool = option(PairOptions, "skip_all_correct", "--skip-all-correct/--keep-all-correct"),
    gold_cot: bool = option(PairOptions, "gold_cot_when_all_wrong", "--gold-cot-when-all-wrong/--no-gold-cot"),
) -> None:
    """Build DPO pairs: a LLaMA-Factory ranking dataset and OpenRLHF pairwise JSONL."""
    from rich.console import Console
    from taosr1_plugins.core.display import print_table

    from taosr1_plugins.data.validation import read_checked_records
    from taosr1_plugins.core.jsonl import PLAIN_NAME_RULE, check_outputs, is_plain_name
    from taosr1_plugins.integrations import dpo_pair_writers
    from taosr1_plugins.passn.pairs import build_pairs, pairs_table

    if not is_plain_name(name):
        raise typer.BadParameter(f"{name!r} is not a plain file name ({PLAIN_NAME_RULE})", param_hint="--name")
    outputs = [out_dir / f"{name}{suffix}" for suffix in (".jsonl", ".openrlhf.jsonl", ".summary.json")]
    check_outputs([*outputs, out_dir / "dataset_info.json"], [samples, sft_data])
    sft_records = read_checked_records(sft_data, require_label=True, unique_ids=False) if sft_data else []
    options = PairOptions(max_pairs_per_prompt=max_pairs_per_prompt, skip_all_correct=skip_all_correct,
                          gold_cot_when_all_wrong=gold_cot, name=name)
    summary = build_pairs(samples, sft_records, out_dir, options, writers=dpo_pair_writers())
    console = Console(stderr=True)
    print_table(pairs_table(summary), console)
    console.print(f"LLaMA-Factory: dataset_dir={out_dir} dataset={name}; OpenRLHF: {summary['openrlhf']['file']}")
