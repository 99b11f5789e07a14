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


def launcher_command(launcher: str, args_file: Path) -> list[str]:
    if launcher == "cli":
        cli = Path(sys.executable).parent / "llamafactory-cli"
        return [str(cli) if cli.exists() else (shutil.which("llamafactory-cli") or "llamafactory-cli"), "train", str(args_file)]
    return [sys.executable, "-m", "taosr1_plugins.integrations.llamafactory.train", str(args_file)]


def train(stage_dir: Path, args: dict[str, Any], launcher: str) -> dict[str, Any]:
    """Write ``stage_dir/train.yaml``, train, stream loss lines, and summarise the trainer state."""
    args_file = stage_dir / "train.yaml"
    log_file = stage_dir / "train.log"
    with atomic_write(args_file) as fh:
        yaml.safe_dump(args, fh, sort_keys=False)
    command = launcher_command(launcher, args_file)
    console.print(f"[bold]{args.get('stage', 'train')}[/bold]: {' '.join(command)}  (log: {log_file})")
    started = time.perf_counter()
    with open(log_file, "w", buffering=1) as log:  # line-buffered: `tail -f` shows the trainer live
        # unbuffered, so loss lines reach the console while training runs, not in 8 KiB bursts
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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
