"""Output for people (issue 31 item 7): one line per stage and its summary file, `stage k/N` and the ETA, tables
that never cut a number, --quiet and --json of `taosr1 run`, files with the user's umask, no model-loading bars."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.pipeline.progress import duration, job_eta, stage_line

REPO = Path(__file__).resolve().parents[1]
# the first four stages of the quickstart on 60 ESCI pairs (template teacher): seconds, no model
STAGES = ("import", "split", "cot", "export")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def _config(tmp_path: Path) -> Path:
    shutil.copy(esci_sample_path(), tmp_path / "esci.csv.gz")
    path = tmp_path / "run.yaml"
    path.write_text(f"run_dir: {tmp_path / 'run'}\ndata: {{source: esci, input: esci.csv.gz, limit: 60}}\n"
                    "cot: {teacher: template, k: 1}\n")
    return path


def _taosr1(*args, umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=600, preexec_fn=lambda: os.umask(umask))


def test_stage_line_says_what_the_stage_did_in_people_words():
    sft = {"steps": 250, "first_loss": 5.7439, "last_loss": 1.1115, "examples_seen": 2000, "examples": 2000}
    assert stage_line("sft", 5, 11, seconds=1651.2, outputs=sft) == "✓ sft 5/11 in 27m31s — 2,000 examples, 250 steps, loss 5.74→1.11"
    assert stage_line("split", 2, 11, seconds=None, outputs={"train": 4000, "dev": 400, "test": 1000}, skipped=True) == (
        "✓ split 2/11 unchanged, skipped — train 4,000 · dev 400 · test 1,000")
    evaluated = {"SFT-CoT": {"macro_f1": 0.3833, "accuracy": 0.4, "n": 16}, "+DPO": {"macro_f1": 0.41, "n": 16}}
    assert stage_line("eval", 10, 11, seconds=3.04, outputs=evaluated) == (
        "✓ eval 10/11 in 3.0s — macro-F1 SFT-CoT 0.383, +DPO 0.410 on 16 pairs")
    # a plugin backend's own outputs: its scalars, never a traceback
    assert stage_line("sft", 1, 1, seconds=4000, outputs={"note": "floor", "steps": "x"}) == "✓ sft 1/1 in 1h06m — x steps"
    assert duration(59.94) == "59.9s" and duration(3600) == "1h00m"


def test_eta_is_the_previous_runs_times_or_unknown():
    previous = {"sft": {"seconds": 1600.0}, "eval": {"seconds": 200.0}, "dpo": {"status": "failed"}}
    assert job_eta(previous, ["sft", "eval"]) == 1800.0
    assert job_eta(previous, ["sft", "dpo", "eval"]) is None  # a stage without a time: no invented total
    assert job_eta({}, ["import"]) is None


def test_quiet_json_summary_files_eta_and_file_modes_on_a_real_run(tmp_path):
    config = _config(tmp_path)
    quiet = _taosr1("run", config, "--until", "export", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("taosr1 run: 4 stages (4 ran, 0 unchanged) in "), quiet.stdout
    assert lines[0].endswith(f"run directory: {tmp_path / 'run'}") and quiet.stderr == ""

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    for index, name in enumerate(STAGES, start=1):
        summary = json.loads((tmp_path / "run" / name / "stage_summary.json").read_text())
        assert summary["stage"] == name and (summary["index"], summary["of"]) == (index, 4)
        assert summary["outputs"] == manifest[name]["outputs"] and summary["warnings"] == []

    # written under umask 022: readable by a teammate, as open() would make them (not mkstemp's 0600)
    for rel in ("manifest.json", "data/all.jsonl", "cot/train.jsonl", "cot/stage_summary.json", "lf_data/dataset_info.json"):
        assert stat.S_IMODE((tmp_path / "run" / rel).stat().st_mode) == 0o644, rel

    # --json: the summary on stdout, people's lines (and the stage k/N rule with the ETA) on stderr
    result = _taosr1("run", config, "--until", "export", "--json", "--from", "cot")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(s["stage"], s["status"]) for s in summary["stages"]] == [
        ("import", "skipped"), ("split", "skipped"), ("cot", "ran"), ("export", "ran")]
    assert summary["stages"][2]["outputs"]["kept"] == 42 and summary["run_dir"] == str(tmp_path / "run")
    assert "✓ import 1/4 unchanged, skipped — 60 records from esci.csv.gz" in result.stderr
    assert "cot · stage 3/4 · ETA " in result.stderr and "(the previous run's stage times)" in result.stderr
    assert "✓ export 4/4 in " in result.stderr and "taosr1 run: 4 stages (2 ran, 2 unchanged)" in result.stderr

    # the same folder anew: no previous times, and it says so
    shutil.rmtree(tmp_path / "run")
    plain = _taosr1("run", config, "--until", "split")
    assert plain.returncode == 0 and "import · stage 1/2 · ETA unknown" in plain.stdout, plain.stdout


def _table_script(width: str) -> str:
    return (
        "from rich.table import Table\nfrom rich.console import Console\n"
        "from taosr1_plugins.core.display import print_table\n"
        "t = Table(title='evaluation')\n"
        "for c in ('model', 'n', 'macro-F1', 'accuracy', 'QWK', 'format ok', 'invalid', 'F1 E', 'F1 S', 'F1 C', 'F1 I'):\n"
        "    t.add_column(c, justify='right')\n"
        "t.add_row('base (zero-shot)', '1000', *['0.234567'] * 9)\n"
        f"print_table(t, {width})\n"
    )


def test_a_table_printed_to_a_pipe_is_markdown_and_cuts_nothing():
    result = subprocess.run([sys.executable, "-c", _table_script("None")], capture_output=True, text=True,
                            env={**_env(), "COLUMNS": "40"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert "| base (zero-shot) | 1000 | " + " | ".join(["0.234567"] * 9) + " |" in result.stdout
    assert "| model | n | macro-F1 |" in result.stdout


def test_a_table_in_a_narrow_terminal_folds_instead_of_cutting():
    script = _table_script("Console(force_terminal=True, width=60, color_system=None)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout and "┃" in result.stdout


def test_atomic_write_gives_the_users_umask():
    code = ("import os, stat, sys\nfrom taosr1_plugins.core.jsonl import atomic_write\n"
            "with atomic_write(sys.argv[1]) as fh:\n    fh.write('x')\n"
            "print(oct(stat.S_IMODE(os.stat(sys.argv[1]).st_mode)))\n")
    for umask, mode in ((0o022, "0o644"), (0o077, "0o600"), (0o002, "0o664")):
        target = Path(os.environ.get("TMPDIR", "/tmp")) / f"taosr1-umask-{os.getpid()}-{umask:o}.txt"
        try:
            result = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True,
                                    env=_env(), timeout=60, preexec_fn=lambda umask=umask: os.umask(umask))
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == mode
        finally:
            target.unlink(missing_ok=True)


def test_model_loading_bars_are_hidden_and_other_bars_are_not():
    code = ("from taosr1_plugins.core.noise import hide_known_noise\nhide_known_noise()\n"
            "from transformers.utils.logging import tqdm\n"
            "list(tqdm(range(3), desc='Loading weights'))\nlist(tqdm(range(3), desc='training'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr and "training" in result.stderr
