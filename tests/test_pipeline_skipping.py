"""The main job's skipping and resuming, fast: the first four stages (import, split, CoT with the
template teacher, export) of a real `taosr1 run`, through the console script's `main()`.

A changed setting, input or --set must re-run its stage and every stage after it, and nothing before;
a run killed mid-way resumes where it stopped; manifest.json records what the README says."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile_helpers import run_main
from taosr1_plugins.data.samples import esci_sample_path

REPO = Path(__file__).resolve().parents[1]
FIRST_STAGES = ("import", "split", "cot", "export")
OUTPUTS = {  # one file each stage writes, whose inode changes when the stage runs (atomic replace)
    "import": "data/all.jsonl",
    "split": "data/train.jsonl",
    "cot": "cot/train.jsonl",
    "export": "lf_data/dataset_info.json",
}


@pytest.fixture
def taosr1(capsys, monkeypatch):
    return lambda *args: run_main(capsys, monkeypatch, *args)


@pytest.fixture
def config(tmp_path) -> Path:
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    shutil.copy(esci_sample_path(), tmp_path / "esci.csv.gz")
    path = tmp_path / "configs" / "run.yaml"
    path.parent.mkdir()
    path.write_text(
        f"run_dir: {tmp_path / 'run'}\n"
        "data: {source: esci, input: ../esci.csv.gz, limit: 60}\n"
        "cot: {teacher: template, k: 1}\n"
    )
    return path


def identities(run: Path) -> dict[str, tuple[int, int]]:
    return {stage: ((s := (run / rel).stat()).st_ino, s.st_mtime_ns) for stage, rel in OUTPUTS.items()}


def rerun_stages(before: dict, after: dict) -> list[str]:
    return [stage for stage in FIRST_STAGES if before[stage] != after[stage]]


def run_until_export(taosr1, config: Path, *extra: str) -> None:
    code, err = taosr1("run", config, "--until", "export", *extra)
    assert code == 0, err


def test_a_change_reruns_its_stage_and_every_later_one_and_nothing_before(tmp_path, taosr1, config):
    run = tmp_path / "run"
    run_until_export(taosr1, config)
    first = identities(run)

    run_until_export(taosr1, config)
    assert rerun_stages(first, identities(run)) == []  # nothing changed: every stage skipped

    ratios = ["--set", "split.ratios=[0.6, 0.2, 0.2]"]
    before = identities(run)
    run_until_export(taosr1, config, *ratios)
    assert rerun_stages(before, identities(run)) == ["split", "cot", "export"]

    fmt = [*ratios, "--set", "format=answer_first"]  # a setting of CoT and export both
    before = identities(run)
    run_until_export(taosr1, config, *fmt)
    assert rerun_stages(before, identities(run)) == ["cot", "export"]

    # a CoT setting: CoT re-runs; export re-runs exactly when CoT's output bytes changed (inputs are hashed)
    cot_bytes = (run / OUTPUTS["cot"]).read_bytes()
    before = identities(run)
    run_until_export(taosr1, config, *fmt, "--set", "cot.k=2")
    changed = (run / OUTPUTS["cot"]).read_bytes() != cot_bytes
    assert rerun_stages(before, identities(run)) == (["cot", "export"] if changed else ["cot"])
    cases = [[*fmt, "--set", "cot.k=2"]]

    # the same settings with a changed input file: from import on
    raw = tmp_path / "esci.csv.gz"
    rows = list(csv.reader(io.StringIO(gzip.decompress(raw.read_bytes()).decode(), newline="")))
    out = io.StringIO()
    csv.writer(out).writerows(rows[:1] + rows[2:])  # one pair fewer
    raw.write_bytes(gzip.compress(out.getvalue().encode()))
    before = identities(run)
    run_until_export(taosr1, config, *cases[-1])
    assert rerun_stages(before, identities(run)) == list(FIRST_STAGES)

    # --from forces a stage and the later ones even though nothing changed
    before = identities(run)
    run_until_export(taosr1, config, *cases[-1], "--from", "cot")
    assert rerun_stages(before, identities(run)) == ["cot", "export"]


def test_manifest_records_config_versions_seed_and_each_stage(tmp_path, taosr1, config):
    run_until_export(taosr1, config, "--set", "seed=7")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["config"]["seed"] == 7
    assert manifest["config"]["data"]["limit"] == 60
    assert manifest["versions"]["python"] and "taosr1-plugins" in manifest["versions"]
    # where it ran, for the report's metadata: the CPU and whether it does bf16 natively
    machine = manifest["machine"]
    assert machine["cpu_count"] >= 1 and machine["machine"] and manifest["started_at"]
    assert machine["avx512_bf16"] in (True, False, None) and machine["amx_bf16"] in (True, False, None)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "\nflags" in cpuinfo:  # x86 Linux: the CPU's flags are there to read
        assert isinstance(machine["avx512_bf16"], bool) and isinstance(machine["amx_bf16"], bool)
    for stage in FIRST_STAGES:
        entry = manifest["stages"][stage]
        assert entry["status"] == "done" and len(entry["fingerprint"]) == 64 and entry["seconds"] >= 0
    assert manifest["stages"]["import"]["outputs"]
    assert "sft" not in manifest["stages"]  # --until export: later stages never started


def test_a_killed_run_resumes_where_it_stopped(tmp_path, taosr1, config):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "taosr1_plugins.cli", "run", str(config), "--until", "export"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    manifest = run / "manifest.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if manifest.exists():
                with contextlib.suppress(json.JSONDecodeError, OSError):
                    if json.loads(manifest.read_text())["stages"].get("split", {}).get("status") == "done":
                        break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    stages = json.loads(manifest.read_text())["stages"]
    assert stages["import"]["status"] == "done" and stages["split"]["status"] == "done"
    killed_at = {stage: ((run / rel).stat().st_ino if (run / rel).exists() else None) for stage, rel in OUTPUTS.items()}

    run_until_export(taosr1, config)
    after = identities(run)
    assert after["import"][0] == killed_at["import"] and after["split"][0] == killed_at["split"]  # kept, not redone
    assert json.loads(manifest.read_text())["stages"]["export"]["status"] == "done"
    assert not list(run.rglob("*.tmp"))  # no temporary of the killed run survives the resumed one
