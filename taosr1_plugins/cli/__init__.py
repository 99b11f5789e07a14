"""The `taosr1` command line. Each command group lives in its own module; heavy imports stay inside commands."""

from __future__ import annotations

import importlib

import typer
from typer.core import TyperGroup

from taosr1_plugins.errors import UserError, printable


class _Commands(TyperGroup):
    """The top-level command group: bad input ends in one line on stderr and status 2, never a traceback.

    Handled here rather than around ``app()`` so that every way of running a command, the console
    script and ``CliRunner`` alike, ends the same way; commands just raise.
    """

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except UserError as exc:  # the one place user errors become a line on stderr and status 2
            _bad_input(str(exc))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            # a path given on the command line that cannot be read or written as asked
            _bad_input(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        except UnicodeDecodeError as exc:
            _bad_input(f"a file is not valid UTF-8 text ({exc.reason} at byte {exc.start})")


app = typer.Typer(cls=_Commands, no_args_is_help=True, add_completion=False, help="TaoSR1 relevance-model toolkit.")

# (module, attribute, group name, help)
GROUPS = (
    ("taosr1_plugins.cli.data", "app", "data", "Import, validate and split relevance records."),
    ("taosr1_plugins.cli.cot", "app", "cot", "Generate chain-of-thought traces with a teacher."),
    ("taosr1_plugins.cli.export", "app", "export", "Export records for a training framework."),
    ("taosr1_plugins.cli.models", "app", "models", "Prepare local model checkpoints."),
    ("taosr1_plugins.cli.patch", "app", "patch", "Apply the minimal upstream patches in patches/."),
    ("taosr1_plugins.cli.passn", "app", "passn", "Stage 2: pass@N sampling, difficulty, DPO pairs."),
)
for module_name, attr, name, help_text in GROUPS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        continue
    app.add_typer(getattr(module, attr), name=name, help=help_text)

# modules that add top-level commands: register(app)
COMMAND_MODULES = (
    "taosr1_plugins.cli.run",
    "taosr1_plugins.cli.plugins",
    "taosr1_plugins.cli.grpo",  # taosr1 grpo
    "taosr1_plugins.cli.deploy",  # taosr1 score / calibrate / serve / eval
)
for module_name in COMMAND_MODULES:
    try:
        importlib.import_module(module_name).register(app)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def main() -> None:
    """The console script (user errors are handled by the command group, see ``_Commands``)."""
    app()


def _bad_input(message: str) -> None:
    typer.secho(f"error: {printable(message)}", fg=typer.colors.RED, err=True)
    raise SystemExit(2)
