"""`taosr1 plugins`: what every registered plugin provides."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """List registered plugins and what each provides."""
        from rich.console import Console
        from taosr1_plugins.core.display import print_table
        from rich.table import Table

        from taosr1_plugins.plugins import describe_plugins

        rows = describe_plugins()
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title="taosr1 plugins")
        for column in ("plugin", "distribution", "provides"):
            table.add_column(column)
        for row in rows:
            provides = "\n".join(f"{what}: {', '.join(names)}" for what, names in row["provides"].items() if names)
            table.add_row(row["name"], row["distribution"] or "-", provides or "-")
        print_table(table, Console())
