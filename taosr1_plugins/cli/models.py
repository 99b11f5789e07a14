"""`taosr1 models prepare`: local checkpoints that install offline."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from taosr1_plugins.core.models import BUILTIN_MODELS

app = typer.Typer(no_args_is_help=True)


# the choices of `taosr1 models prepare`: the package's one list of built-in models
PreparableModel = Enum("PreparableModel", {name: name for name in BUILTIN_MODELS}, type=str)


@app.command("prepare")
def prepare(
    name: PreparableModel = typer.Argument(..., help="; ".join(f"{k}: {v}" for k, v in BUILTIN_MODELS.items())),
    out: Path = typer.Option(None, help="Checkpoint directory (default: $TAOSR1_CACHE_DIR/models/NAME)."),
    force: bool = typer.Option(False, help="Rebuild even when the checkpoint is already there."),
) -> None:
    """Convert or build a checkpoint once; later calls return the cached one."""
    from taosr1_plugins.core.models import prepare_builtin

    path = prepare_builtin(name.value, out, force=force)
    typer.echo(str(path))
