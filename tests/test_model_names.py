"""One way to name a model everywhere: a built-in name, a folder or a Hub id, resolved by core.models.resolve_model.

A name that loads nothing is one line and status 2 within seconds, from every command that takes a model, and
never the Hub's download retries (about 70 s, then a long traceback); a Hub id in the local cache loads from
its snapshot folder without the Hub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile_helpers import run_main, snapshot

REPO = Path(__file__).resolve().parents[1]
MISSING = "nobody-org/no-such-model-xyz"


def one_record(folder: Path) -> Path:
    data = folder / "data.jsonl"
    data.write_text(json.dumps({"id": "a", "query": "red shoes", "item": {"title": "Acme red running shoe"},
                                "label": "E", "scheme": "esci"}) + "\n")
    return data


@pytest.mark.parametrize("offline", ["1", "0"], ids=["HF_HUB_OFFLINE", "hub-asked-once"])
def test_score_with_an_unknown_model_is_one_line_within_seconds(tmp_path, offline):
    """As a user runs it, in its own process: offline the cache settles it; otherwise one metadata request
    does (unreachable here, or "no such model" where the Hub answers), never a download's retries."""
    data = one_record(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": offline, "TRANSFORMERS_OFFLINE": offline}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", "score", "--model", MISSING, "--data", str(data),
         "--out", str(tmp_path / "out" / "scores.jsonl")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=180,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {MISSING}: no such model folder"), result.stderr
    assert elapsed < (20 if offline == "1" else 60), f"{elapsed:.0f}s"
    assert not (tmp_path / "out").exists()


def commands(folder: Path) -> dict[str, list]:
    data = one_record(folder)
    return {
        "score": ["score", "--model", MISSING, "--data", data, "--out", folder / "out" / "s.jsonl"],
        "serve": ["serve", "--model", MISSING],
        "serve-chat": ["serve-chat", "--model", MISSING],
        "passn sample": ["passn", "sample", "--model", MISSING, "--data", data, "--out", folder / "out" / "s.jsonl"],
        "grpo train": ["grpo", "train", "--model", MISSING, "--data", data, "--out-dir", folder / "out"],
        "cot teacher hf": ["cot", "generate", "--data", data, "--out", folder / "out" / "cot.jsonl", "--teacher", "hf",
                           "-o", f"model={MISSING}"],
    }


@pytest.mark.parametrize("command", ["score", "serve", "serve-chat", "passn sample", "grpo train", "cot teacher hf"])
def test_every_command_names_an_unknown_model_in_one_line(tmp_path, capsys, monkeypatch, command):
    """Through the console script's main(), offline (conftest): status 2, the name and why, nothing written."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = commands(tmp_path)[command]
    before = snapshot(tmp_path)
    code, err = run_main(capsys, monkeypatch, *args)
    assert code == 2, err
    assert "Traceback" not in err and f"{MISSING}: no such model folder" in err and "Hugging Face cache" in err, err
    assert snapshot(tmp_path) == before


def fake_hub_cache(root: Path, repo_id: str, model_dir: Path, files: list[str] | None = None) -> Path:
    """The Hugging Face cache layout (models--org--name/refs/main -> snapshots/COMMIT/) holding ``model_dir``'s
    files (only ``files`` when given): what a download leaves, without the Hub."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot_dir = repo / "snapshots" / commit
    snapshot_dir.mkdir(parents=True)
    for file in model_dir.iterdir():
        if file.is_file() and (files is None or file.name in files):
            shutil.copy(file, snapshot_dir / file.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot_dir


def resolve_in_process(name: str, hub_cache: Path, offline: str) -> subprocess.CompletedProcess:
    code = "from taosr1_plugins.core.models import resolve_model; import sys; print(resolve_model(sys.argv[1]))"
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": offline, "TRANSFORMERS_OFFLINE": offline}
    return subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)


@pytest.mark.parametrize("offline", ["1", "0"], ids=["HF_HUB_OFFLINE", "hub-asked-once"])
def test_a_cached_hub_id_loads_from_its_snapshot_folder(tmp_path, tiny_model_dir, offline):
    """Offline, or with a Hub that does not answer for it, a cached id is its snapshot folder: loading a folder
    asks the Hub nothing. A snapshot with the config only is named like any incomplete folder."""
    snapshot_dir = fake_hub_cache(tmp_path / "hub", "some-org/cached-model", tiny_model_dir)
    found = resolve_in_process("some-org/cached-model", tmp_path / "hub", offline)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(snapshot_dir)

    fake_hub_cache(tmp_path / "hub", "some-org/config-only", tiny_model_dir, files=["config.json"])
    partial = resolve_in_process("some-org/config-only", tmp_path / "hub", offline)
    assert partial.returncode != 0 and "some-org/config-only: no weights" in partial.stderr, partial.stderr


def test_built_in_names_resolve_to_their_prepared_checkpoints(tiny_model_dir):
    from taosr1_plugins.core.models import resolve_model

    assert resolve_model("tiny") == str(tiny_model_dir)
    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir)  # a folder: checked, returned as named
    with pytest.raises(Exception, match="no such model directory"):
        resolve_model(Path("tiny"))  # a Path is a folder, never a built-in name
