"""`taosr1 export`: write records in a training framework's dataset layout."""

from __future__ import annotations

from pathlib import Path

import typer

from taosr1_plugins.core.formats import ResponseFormat

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("llamafactory")
def llamafactory(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Records JSONL (with cot)."),
    out_dir: Path = typer.Option(..., "--out-dir", file_okay=False, help="LLaMA-Factory dataset_dir."),
    name: str = typer.Option(None, "--name", help="Dataset name; default: the data file's stem."),
    fmt: ResponseFormat = typer.Option(
        ResponseFormat.THINK_ANSWER, "--format", help="think_answer (stage-1 CoT SFT) or answer_first (post-CoT)."
    ),
    allow_missing_cot: bool = typer.Option(
        False, "--allow-missing-cot", help="Keep records without cot; their target is the answer alone."
    ),
) -> None:
    """Write DIR/NAME.jsonl and the NAME entry of DIR/dataset_info.json (merged with what is there)."""
    from taosr1_plugins.integrations.llamafactory.export import DATASET_INFO, default_name, export_llamafactory
    from taosr1_plugins.core.jsonl import PLAIN_NAME_RULE, check_outputs, is_plain_name

    if name is not None and not is_plain_name(name):
        raise typer.BadParameter(f"{name!r} is not a plain file name ({PLAIN_NAME_RULE})", param_hint="--name")
    check_outputs([out_dir / f"{name or default_name(data)}.jsonl", out_dir / DATASET_INFO], [data])
    result = export_llamafactory(data, out_dir, name=name, fmt=fmt, allow_missing_cot=allow_missing_cot)
    extra = f" ({result.without_cot} without cot: answer-only targets)" if result.without_cot else ""
    typer.echo(f"{result.records} records{extra} -> {result.data_file}")
    typer.echo(f"dataset '{result.name}' in {result.dataset_info}")
