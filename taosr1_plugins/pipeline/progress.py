"""What `taosr1 run` says to people (issue 31 item 7): one line per stage, `stage k/N`, a job ETA, --quiet, --json.

Each stage ends in one line, e.g. ``✓ sft 5/11 in 27m31s — 2,000 examples, loss 5.74→1.11``; its full outputs
go to ``STAGE/stage_summary.json`` (and, as before, to the manifest). Before a stage runs, a rule names it with
``stage k/N`` and the time the job still needs, from the previous run's stage times in the manifest; without
a previous time for every stage left it says "ETA unknown" rather than guess.

``--quiet`` sends everything the stages print (also from their child processes: file descriptor 1 itself) to
/dev/null and keeps warnings, errors and the final line; ``--json`` sends it to stderr and prints the run's
summary as JSON on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.pipeline.manifest import STAGE_SUMMARY_FILE as SUMMARY_FILE  # fingerprint() leaves it out


def duration(seconds: float) -> str:
    """27m31s, 1h02m, 4.2s."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _f(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _loss(out: dict[str, Any]) -> str | None:
    if out.get("first_loss") is not None and out.get("last_loss") is not None:
        return f"loss {out['first_loss']:.2f}→{out['last_loss']:.2f}"
    return None


def _training(out: dict[str, Any], count_key: str | None, noun: str) -> list[str]:
    parts = []
    count = out.get(count_key) if count_key else None
    if count is None:
        count = out.get("examples_seen") if noun == "examples" else None
    if count is not None:
        parts.append(f"{_n(count)} {noun}")
    if out.get("steps") is not None:
        parts.append(f"{_n(out['steps'])} steps")
    return parts + [loss] if (loss := _loss(out)) else parts


def _import(out: dict[str, Any]) -> list[str]:
    return [f"{_n(out.get('records'))} records from {Path(str(out.get('input', '?'))).name}"]


def _split(out: dict[str, Any]) -> list[str]:
    return [" · ".join(f"{name} {_n(count)}" for name, count in out.items())]


def _cot(out: dict[str, Any]) -> list[str]:
    parts = [f"{_n(out.get('kept'))}/{_n(out.get('total'))} traces kept"]
    if out.get("dropped"):
        parts.append(f"{_n(out['dropped'])} dropped")
    return parts + ([f"teacher {out['teacher']}"] if out.get("teacher") else [])


def _export(out: dict[str, Any]) -> list[str]:
    return [f"{_n(out.get('records'))} examples ({_n(out.get('distinct'))} distinct)"]


def _passn(out: dict[str, Any]) -> list[str]:
    parts = [f"{_n(out.get('prompts'))} prompts", f"{_n(out.get('samples'))} samples"]
    if "pass@1" in out:
        parts.append(f"pass@1 {_f(out['pass@1'])}, pass@n {_f(out.get('pass@n'))}")
    return parts


def _grpo(out: dict[str, Any]) -> list[str]:
    parts = [f"{_n(out['steps'])} steps"] if out.get("steps") is not None else []
    if out.get("reward_first") is not None and out.get("reward_last") is not None:
        parts.append(f"reward {out['reward_first']:.2f}→{out['reward_last']:.2f}")
    return parts


def _eval(out: dict[str, Any]) -> list[str]:
    parts = [f"{label} {_f(m.get('macro_f1'))}" for label, m in out.items() if isinstance(m, dict)]
    n = next((m.get("n") for m in out.values() if isinstance(m, dict)), None)
    return ["macro-F1 " + ", ".join(parts) + (f" on {_n(n)} pairs" if n is not None else "")] if parts else []


def _deploy(out: dict[str, Any]) -> list[str]:
    tests = out.get("test") or {}
    if not tests:
        return []
    name, final = list(tests.items())[-1]
    return [f"{name} macro-F1 {_f(final.get('macro_f1_cumpt'))} with CumPT vs {_f(final.get('macro_f1_argmax'))} argmax",
            f"report {out.get('report')}"]


DESCRIBE = {
    "import": _import,
    "split": _split,
    "cot": _cot,
    "export": _export,
    "sft": lambda out: _training(out, "examples", "examples"),
    "passn": _passn,
    "pairs": lambda out: [f"{_n(out.get('pairs'))} pairs"],
    "dpo": lambda out: _training(out, "pairs", "pairs"),
    "grpo": _grpo,
    "post_cot": lambda out: _training(out, "examples", "examples"),
    "eval": _eval,
    "deploy": _deploy,
}


def _generic(out: dict[str, Any]) -> list[str]:
    return [f"{key} {_n(value)}" for key, value in out.items() if isinstance(value, (int, float, str)) and len(str(value)) < 40][:4]


def describe(name: str, outputs: dict[str, Any] | None) -> str:
    """What a stage did, in a few words, from its outputs; '' when there is nothing to say."""
    if not isinstance(outputs, dict) or not outputs:
        return ""
    try:
        parts = DESCRIBE.get(name, _generic)(outputs)
    except (KeyError, TypeError, ValueError, AttributeError):  # a plugin backend's own outputs
        parts = _generic(outputs)
    return ", ".join(part for part in parts if part)


def stage_line(name: str, index: int, total: int, *, seconds: float | None, outputs: dict[str, Any] | None,
               skipped: bool = False) -> str:
    """``✓ sft 5/11 in 27m31s — 2,000 examples, loss 5.74→1.11`` (plain text)."""
    head = f"✓ {name} {index}/{total} " + ("unchanged, skipped" if skipped else f"in {duration(seconds or 0.0)}")
    what = describe(name, outputs)
    return f"{head} — {what}" if what else head


def write_stage_summary(folder: Path, summary: dict[str, Any]) -> Path:
    """The stage's full summary (outputs, seconds, warnings) as JSON in its folder."""
    path = folder / SUMMARY_FILE
    with atomic_write(path) as fh:
        json.dump(summary, fh, indent=2, default=str, ensure_ascii=False)
        fh.write("\n")
    return path


def job_eta(previous: dict[str, dict[str, Any]], names: list[str]) -> float | None:
    """Seconds stages ``names`` took in the previous run (manifest entries); None unless each has a time."""
    times = [previous.get(name, {}).get("seconds") for name in names]
    if any(not isinstance(seconds, (int, float)) for seconds in times):
        return None
    return float(sum(times))


def eta_text(seconds: float | None) -> str:
    return "ETA unknown" if seconds is None else f"ETA {duration(seconds)} (the previous run's stage times)"


class RunOutput:
    """Where `taosr1 run` writes: ``console`` for people; with ``quiet`` only warnings and the final line."""

    def __init__(self, *, quiet: bool = False, as_json: bool = False, stream: IO[str] | None = None):
        self.quiet, self.as_json = quiet, as_json
        self.console = Console(file=stream, stderr=stream is None and as_json, highlight=False)
        self.stages: list[dict[str, Any]] = []  # what --json prints: each stage as it ran or was skipped
        self.started = time.perf_counter()

    def record(self, name: str, status: str, seconds: float | None, outputs: Any, warnings: list[str],
               summary_file: Path | None = None) -> None:
        self.stages.append({"stage": name, "status": status, "seconds": seconds, "outputs": outputs,
                            "warnings": warnings, "summary_file": None if summary_file is None else str(summary_file)})

    def say(self, markup: str) -> None:
        if not self.quiet:
            self.console.print(markup, soft_wrap=True)  # one line, whatever the width: a path is never cut

    def rule(self, text: str) -> None:
        if not self.quiet:
            self.console.rule(text)

    def warn(self, markup: str) -> None:
        self.console.print(markup, soft_wrap=True)

    def final(self, text: str) -> None:
        self.console.print(escape(text), soft_wrap=True)

    def final_line(self, run_dir: Path) -> str:
        """``taosr1 run: 11 stages (3 ran, 8 unchanged) in 29m10s; run directory: runs/quickstart``."""
        ran = sum(stage["status"] == "ran" for stage in self.stages)
        skipped = sum(stage["status"] == "skipped" for stage in self.stages)
        stopped = [stage["stage"] for stage in self.stages if stage["status"] == "dry_run"]
        what = f"{len(self.stages)} stage{'s' if len(self.stages) != 1 else ''} ({ran} ran, {skipped} unchanged)"
        if stopped:
            what += f", dry run stopped at {stopped[0]}"
        return f"taosr1 run: {what} in {duration(time.perf_counter() - self.started)}; run directory: {run_dir}"

    def summary(self, run_dir: Path) -> dict[str, Any]:
        """What --json prints."""
        return {"run_dir": str(run_dir), "manifest": str(run_dir / "manifest.json"),
                "seconds": round(time.perf_counter() - self.started, 1), "stages": self.stages}


@contextlib.contextmanager
def run_output(*, quiet: bool = False, as_json: bool = False) -> Iterator[tuple[RunOutput, IO[str]]]:
    """The run's output and its real stdout: with ``quiet`` the stages' stdout (file descriptor 1, so also
    their child processes') goes to /dev/null, with ``as_json`` to stderr; people's lines go to the real
    stdout (``quiet``) or stderr (``as_json``), and the JSON to the real stdout."""
    if not (quiet or as_json):
        yield RunOutput(), sys.stdout
        return
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor (pytest's capsys): Python level only
        fd = None
    target = open(os.devnull, "w") if quiet else sys.stderr
    saved = os.dup(fd) if fd is not None else None
    real = os.fdopen(saved, "w", closefd=False) if saved is not None else sys.stdout
    if quiet and os.environ.get("TQDM_DISABLE") is None:  # tqdm >= 4.66: the trainers' bars, in child processes too
        os.environ["TQDM_DISABLE"] = "1"
        restore_tqdm = True
    else:
        restore_tqdm = False
    try:
        if fd is not None:
            os.dup2(target.fileno(), fd)
        with contextlib.redirect_stdout(target):
            yield RunOutput(quiet=quiet, as_json=as_json, stream=real if quiet else sys.stderr), real
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        if fd is not None and saved is not None:
            os.dup2(saved, fd)
        real.flush()
        if saved is not None:
            real.close()
            os.close(saved)
        if quiet:
            target.close()
        if restore_tqdm:
            os.environ.pop("TQDM_DISABLE", None)
