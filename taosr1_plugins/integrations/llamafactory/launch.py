"""Run one LLaMA-Factory training (SFT or DPO) for its training backend, through the CLI or our entry point."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.core.trainer_state import training_summary

console = Console()
# the trainer's tqdm bar, e.g. " 10%|█    | 13/125 [00:20<02:40,  1.43s/it]" (universal newlines split its \r updates)
PROGRESS_RE = re.compile(r"(\d+)/(\d+) \[([\d:]+)<([\d:?]+),\s*([^\]]+)\]")
PROGRESS_EVERY_S = 15.0


class ProgressEcho:
    """Echo the trainer's own tqdm bars (data preparation, then training steps: done/total, elapsed, ETA, rate)
    every few seconds, and when each ends."""

    def __init__(self, label: str):
        self.label, self.last = label, 0.0

    def __call__(self, line: str) -> bool:
        match = PROGRESS_RE.search(line)
        if not match or match.group(2) == "0":
            return False
        done, total, elapsed, eta, rate = match.groups()
        now = time.monotonic()
        if done == total or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            console.print(f"  {self.label}: {done}/{total}, {elapsed} elapsed, ETA {eta}, {rate.strip()}", highlight=False)
        return True


def child_env() -> dict[str, str]:
    """The trainer's environment: the launching interpreter's bin directory first on PATH, since LLaMA-Factory's
    launcher runs ``torchrun`` by bare name (``FORCE_TORCHRUN``, or more than one GPU) and the docs run
    ``.venv/bin/taosr1`` without activating the venv; unbuffered, so loss lines arrive while training runs."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH")
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, path]) if path else bin_dir, "PYTHONUNBUFFERED": "1"}


def launcher_command(launcher: str, args_file: Path) -> list[str]:
    if launcher == "cli":
        cli = Path(sys.executable).parent / "llamafactory-cli"
        return [str(cli) if cli.exists() else (shutil.which("llamafactory-cli") or "llamafactory-cli"), "train", str(args_file)]
    return [sys.executable, "-m", "taosr1_plugins.integrations.llamafactory.train", str(args_file)]


def resumable_checkpoint(args_file: Path, args: dict[str, Any]) -> Path | None:
    """The checkpoint an interrupted training with these very arguments left, which LLaMA-Factory resumes from
    when ``overwrite_output_dir`` is false; None after clearing ``output_dir`` when it holds anything else.

    LLaMA-Factory resumes from the last ``checkpoint-N`` of ``output_dir`` whatever trained it, and refuses a
    non-empty ``output_dir`` without one: a stage re-run with other settings (or a finished one run again)
    must start from an empty folder, an interrupted one from its checkpoint."""
    from transformers.trainer_utils import get_last_checkpoint

    output_dir = Path(args["output_dir"])
    if not output_dir.is_dir():
        return None
    previous = yaml.safe_load(args_file.read_text()) if args_file.is_file() else None
    last = get_last_checkpoint(str(output_dir)) if previous == args else None
    if last is None or (output_dir / "trainer_state.json").is_file():  # that training finished: nothing to resume
        shutil.rmtree(output_dir)
        return None
    return Path(last)


def train(stage_dir: Path, args: dict[str, Any], launcher: str) -> dict[str, Any]:
    """Write ``stage_dir/train.yaml``, train (resuming an interrupted run of the same arguments), stream loss
    lines, and summarise the trainer state."""
    args_file = stage_dir / "train.yaml"
    log_file = stage_dir / "train.log"
    if (checkpoint := resumable_checkpoint(args_file, args)) and not args.get("overwrite_output_dir"):
        console.print(f"  resuming from {checkpoint} (an interrupted run with the same arguments)", highlight=False)
    with atomic_write(args_file) as fh:
        yaml.safe_dump(args, fh, sort_keys=False)
    command = launcher_command(launcher, args_file)
    console.print(f"[bold]{args.get('stage', 'train')}[/bold]: {' '.join(command)}  (log: {log_file})")
    started = time.perf_counter()
    with open(log_file, "w", buffering=1) as log:  # line-buffered: `tail -f` shows the trainer live
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env())
        assert process.stdout is not None
        progress = ProgressEcho(str(args.get("stage", "train")))
        for line in process.stdout:
            log.write(line)
            if progress(line):
                continue
            if "'loss'" in line or "Error" in line:
                console.print("  " + line.strip()[-160:], highlight=False)
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"LLaMA-Factory training failed (exit {code}); see {log_file}")
    return {**training_summary(Path(args["output_dir"])), "wall_seconds": round(time.perf_counter() - started, 1)}
