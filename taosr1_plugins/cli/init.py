"""`taosr1 init DIR`: the first command of a new user, a starter config that runs from any folder."""

from __future__ import annotations

from pathlib import Path

import typer

from taosr1_plugins.cli import file_errors
from taosr1_plugins.cli.options import import_options, option
from taosr1_plugins.data.columns import ImportOptions


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        directory: Path = typer.Argument(..., file_okay=False, help="Folder for the config (made if missing)."),
        data: Path = typer.Option(
            None, "--data", exists=True, dir_okay=False,
            help="Your raw judgement file (CSV/JSONL, optionally .gz); default: the ESCI sample shipped in the package.",
        ),
        source: str = typer.Option("esci", "--source", help="Importer of --data (see `taosr1 plugins`)."),
        scheme: str = typer.Option(None, "--scheme", help="Label scheme: a registered name or a YAML file. "
                                   "Default: the importer's own."),
        # the same flags as `taosr1 data import`: a shop's own columns need them before the first record reads
        map_text: str | None = option(ImportOptions, "map", "--map", default=None),
        labels_text: str | None = option(ImportOptions, "labels", "--labels", default=None),
        delimiter: str | None = option(ImportOptions, "delimiter"),
        force: bool = typer.Option(False, "--force", help="Replace an existing DIR/taosr1.yaml."),
    ) -> None:
        """Write a starter run config: the quickstart's settings on your data, runnable from any folder."""
        from taosr1_plugins.pipeline.starter import DataChoice, write_starter

        options = import_options(map_text, labels_text, delimiter)
        with file_errors():
            choice = DataChoice(source=source, input=data, scheme=scheme, options=options)
            out = write_starter(directory, choice, force=force)
        typer.echo(f"wrote {out}")
        typer.echo(f"check it: taosr1 run {out} --check")
        typer.echo(f"run it:   taosr1 run {out}")
