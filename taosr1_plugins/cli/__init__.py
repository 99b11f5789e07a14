"""The `taosr1` command line. Each command group lives in its own module; heavy imports stay inside commands.

Every command and command group is registered once, in :data:`COMMANDS`, and its module is imported only when
that command runs (or its own ``--help`` is asked for): ``taosr1 --help`` lists them all from the table alone.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator, MutableMapping

import typer
from typer.core import TyperCommand, TyperGroup

from taosr1_plugins.errors import DataError, UserError, printable

# (name, module, help): every `taosr1 NAME`, in the order `taosr1 --help` lists them. A module either has a
# ``register(app)`` that adds its commands (several names may share it) or is a command group whose typer
# ``app`` becomes `taosr1 NAME` with this help. A command's own help is its docstring; the help here is the
# line `taosr1 --help` shows for it without importing the module (tests/test_cli_table.py keeps them equal).
COMMANDS = (
    ("init", "taosr1_plugins.cli.init",
     "Write a starter run config: the quickstart's settings on your data, runnable from any folder."),
    ("run", "taosr1_plugins.cli.run",
     "Run every stage: import → split → CoT → SFT → pass@N → DPO → GRPO → evaluation → deployment."),
    ("baselines", "taosr1_plugins.cli.run",
     "Baselines on the run's splits: majority, lexical, MiniLM cross-encoder, LM zero-shot and direct-answer."),
    ("report", "taosr1_plugins.cli.run",
     "The run's one HTML report: ablation table with intervals, per-stage metrics, worst errors, run metadata."),
    ("plugins", "taosr1_plugins.cli.plugins", "List registered plugins and what each provides."),
    ("score", "taosr1_plugins.cli.deploy",
     "Label probabilities in one forward pass per pair; rerun the same command to resume."),
    ("calibrate", "taosr1_plugins.cli.deploy",
     "Fit a calibration and CumPT thresholds on labelled scores; compare with argmax on the same pairs."),
    ("serve", "taosr1_plugins.cli.deploy",
     "Serve POST /v1/score (pairs -> probs, label, tier, score[, margin][, explanation]) and GET /healthz."),
    ("serve-chat", "taosr1_plugins.cli.deploy",
     ("Serve a local model behind an OpenAI-compatible chat endpoint (POST /v1/chat/completions, GET /v1/models, "
      "GET /health): a local teacher, and what the tests talk to.")),
    ("eval", "taosr1_plugins.cli.deploy",
     ("Macro-F1, accuracy, per-level P/R/F1, confusion, QWK, tag slices, NDCG, over-recall, ECE and tier "
      "stability, with plots, as one HTML file.")),
    ("post-cot", "taosr1_plugins.cli.deploy", "Convert think-then-answer data to the answer-first (post-CoT) form."),
    ("data", "taosr1_plugins.cli.data", "Import, validate and split relevance records."),
    ("cot", "taosr1_plugins.cli.cot", "Generate chain-of-thought traces with a teacher."),
    ("export", "taosr1_plugins.cli.export", "Export records for a training framework."),
    ("models", "taosr1_plugins.cli.models", "Prepare local model checkpoints."),
    ("patch", "taosr1_plugins.cli.patch", "Apply the minimal upstream patches in patches/."),
    ("passn", "taosr1_plugins.cli.passn", "Stage 2: pass@N sampling, difficulty, DPO pairs."),
    ("grpo", "taosr1_plugins.cli.grpo", "Stage 3: GRPO with the relevance reward and difficulty-based sampling."),
)
_TABLE = {name: (module_name, help_text) for name, module_name, help_text in COMMANDS}
_loaded_modules: dict[str, TyperGroup] = {}  # module -> the group its commands were built in


def _available(module_name: str) -> bool:
    """Whether the module is there, without importing it (a command whose module is absent is not offered)."""
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def load_command(name: str):
    """The click command of the table's ``name``, its module imported now; None where the module is absent."""
    module_name, help_text = _TABLE[name]
    if module_name not in _loaded_modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        holder = typer.Typer()
        if hasattr(module, "register"):
            module.register(holder)
        else:
            holder.add_typer(module.app, name=name, help=help_text)
        _loaded_modules[module_name] = typer.main.get_group(holder)
    return _loaded_modules[module_name].commands[name]


class _LazyCommands(MutableMapping):
    """The top-level commands: every name of the table, each loaded on first access (``commands[name]``)."""

    def __init__(self, loaded: dict):
        self._loaded = dict(loaded)

    def __getitem__(self, name: str):
        if name not in self._loaded:
            if name not in _TABLE or (command := load_command(name)) is None:
                raise KeyError(name)
            self._loaded[name] = command
        return self._loaded[name]

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __setitem__(self, name: str, command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        names = [name for name, module_name, _ in COMMANDS if name in self._loaded or _available(module_name)]
        return iter(names + [name for name in self._loaded if name not in _TABLE])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Commands(TyperGroup):
    """The top-level command group: bad input ends in one line on stderr and status 2, never a traceback.

    Handled here rather than around ``app()`` so that every way of running a command, the console
    script and ``CliRunner`` alike, ends the same way; commands just raise.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)
        self._listing = False

    def format_help(self, ctx, formatter):
        self._listing = True  # the list of commands comes from the table: nothing is imported for it
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)  # names only: TyperGroup's would load every command

    def get_command(self, ctx, cmd_name: str):
        if self._listing and cmd_name in _TABLE and not self.commands.is_loaded(cmd_name):
            return TyperCommand(name=cmd_name, help=_TABLE[cmd_name][1])
        return self.commands.get(cmd_name)

    def main(self, args=None, *rest, **kwargs):
        _invoked[:] = sys.argv[1:] if args is None else list(args)
        try:
            return super().main(args, *rest, **kwargs)
        except UserError as exc:  # the one place user errors become a line on stderr and status 2
            _bad_input(str(exc))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            # a path given on the command line that cannot be read or written as asked
            _bad_input(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        except UnicodeDecodeError as exc:
            _bad_input(f"a file is not valid UTF-8 text ({exc.reason} at byte {exc.start})")


app = typer.Typer(cls=_Commands, no_args_is_help=True, add_completion=False, help="TaoSR1 relevance-model toolkit.")


@app.callback()
def _root() -> None:
    # a callback makes the app a command group although every command is added lazily, from COMMANDS
    pass


@contextlib.contextmanager
def file_errors() -> Iterator[None]:
    """Any OSError on a command's own files (a missing input, an output directory that cannot be made, a
    special file) as the user error naming the path: status 2, like the common kinds ``main`` handles."""
    try:
        yield
    except UserError:  # OutputExistsError is an OSError too
        raise
    except OSError as exc:
        if exc.filename is None:
            raise UserError(exc.strerror or str(exc)) from exc
        raise DataError(str(exc.filename), None, None, exc.strerror or str(exc)) from exc


_invoked: list[str] = []  # this run's arguments, for a command handed on to the vLLM environment


def in_vllm_environment(backend: str, executor: str = "local") -> None:
    """A command run with ``--backend vllm`` where this environment has no vLLM (the main one never imports it)
    runs again, whole, in the vLLM environment's interpreter (core/vllm/env.py), which is checked first
    (status 2 naming what is missing: Ray too for ``--executor ray``, whose actors run in that interpreter); this
    process ends with its status. Returns at once otherwise."""
    if backend != "vllm":
        return
    from taosr1_plugins.core.vllm.env import RAY_PACKAGES, check_vllm_env, child_env, vllm_importable, vllm_python

    if vllm_importable():
        return
    python = vllm_python()
    check_vllm_env(python, RAY_PACKAGES if executor == "ray" else ())
    raise typer.Exit(subprocess.run([python, "-m", "taosr1_plugins.cli", *_invoked], env=child_env(python)).returncode)


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def main() -> None:
    """The console script (user errors are handled by the command group, see ``_Commands``)."""
    app()


def _bad_input(message: str) -> None:
    typer.secho(f"error: {printable(message)}", fg=typer.colors.RED, err=True)
    raise SystemExit(2)
