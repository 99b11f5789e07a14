"""The run manifest: config, versions, seeds, input hashes and per-stage status and timings."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.core.digest import file_sha256
from taosr1_plugins.core.machine import machine

STAGE_SUMMARY_FILE = "stage_summary.json"
TRACKED_DISTRIBUTIONS = ("taosr1-plugins", "torch", "transformers", "llamafactory", "trl", "peft", "datasets")


def fingerprint(settings: Any, inputs: list[Path]) -> str:
    """What a stage's result depends on: its settings and the content of its input files."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in inputs:
        digest.update(str(path.name).encode())
        if path.is_dir():
            # a stage's own stage_summary.json (pipeline/progress.py) holds its timing: not what a later stage reads
            for child in sorted(p for p in path.rglob("*") if p.is_file() and p.name != STAGE_SUMMARY_FILE):
                digest.update(file_sha256(child).encode())
        elif path.exists():
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


class Manifest:
    def __init__(self, run_dir: Path):
        self.path = run_dir / "manifest.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {"stages": {}}

    def start_run(self, config: dict[str, Any], seed: int) -> None:
        self.data.update(config=config, seed=seed, versions=versions(), argv=sys.argv, machine=machine(),
                         started_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.save()

    def stage(self, name: str) -> dict[str, Any]:
        return self.data["stages"].get(name, {})

    def is_done(self, name: str, stage_fingerprint: str) -> bool:
        entry = self.stage(name)
        return entry.get("status") == "done" and entry.get("fingerprint") == stage_fingerprint

    def record(self, name: str, **fields: Any) -> None:
        entry = self.data["stages"].setdefault(name, {})
        entry.update(fields, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.save()

    def save(self) -> None:
        with atomic_write(self.path) as fh:
            json.dump(self.data, fh, indent=2, default=str)
