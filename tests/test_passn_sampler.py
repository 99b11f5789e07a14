"""pass@N sampling with the `hf` backend on the tiny model: rows and stats,
and a real CLI run killed with SIGKILL, refused a rerun with other settings, and resumed to the very
file an uninterrupted run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taosr1_plugins.core.formats import parse_response
from taosr1_plugins.passn.generation import get_generation_backend
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.passn.sample import (
    PassnShardSettings,
    output_paths,
    read_samples,
    sample_passn,
)
from taosr1_plugins import plugins
from taosr1_plugins.core.schemes import get_scheme

REPO = Path(__file__).resolve().parents[1]
TAOSR1 = [sys.executable, "-c", "from taosr1_plugins.cli import main; main()"]
SETTINGS = PassnShardSettings(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=7, shard_size=2)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return get_generation_backend("hf", model=str(tiny_model_dir), device="cpu", batch_size=2)


def test_builtin_backends_are_registered():
    assert {"hf", "vllm", "openai"} <= set(plugins.registered("generation_backend"))


def test_vllm_backend_without_vllm_says_what_to_install():
    from taosr1_plugins.passn.generation import GenerationError

    if __import__("importlib").util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(GenerationError, match=r"pip install 'vllm>="):
        get_generation_backend("vllm", model="x")


def test_samples_rows_and_stats(tmp_path, tiny_model_dir, esci_records, backend):
    records = esci_records[:5]
    out = tmp_path / "samples.jsonl"
    summary = sample_passn(str(tiny_model_dir), records, out, SETTINGS, backend=backend)
    rows = list(read_samples(out))
    assert [r.id for r in rows] == [r.id for r in records]
    scheme = get_scheme("esci")
    for row, record in zip(rows, records):
        assert row.gold == record.label and len(row.responses) == SETTINGS.n
        for response in row.responses:
            parsed = parse_response(response.text, scheme, row.fmt)
            assert (response.label, response.format_ok) == (parsed.label, parsed.format_ok)
            assert response.correct == (parsed.format_ok and parsed.label == record.label)
        correct = sum(r.correct for r in row.responses)
        assert row.stats.correct == correct and row.stats.pass_at_1 == correct / SETTINGS.n
        assert row.stats.pass_at_n == (correct > 0)
        assert sum(row.stats.label_distribution.values()) == SETTINGS.n
    assert summary["prompts"] == 5 and summary["samples"] == 15 and summary["shards"] == 3
    assert summary["pass@1"] == round(sum(r.stats.pass_at_1 for r in rows) / 5, 4)
    assert json.loads(output_paths(out)["summary"].read_text())["settings"] == SETTINGS.model_dump(mode="json")
    assert not output_paths(out)["shards"].exists()
    # the random tiny model writes varied text: N samples of a prompt are really N draws
    assert any(len({r.text for r in row.responses}) > 1 for row in rows)
    with pytest.raises(FileExistsError):  # a finished run is not silently replaced
        sample_passn(str(tiny_model_dir), records, out, SETTINGS, backend=backend)


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TQDM_MININTERVAL": "0"}
    return subprocess.Popen([*TAOSR1, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def test_sigkill_and_rerun_resumes_without_loss_or_duplicates(tmp_path, tiny_model_dir, esci_records, backend):
    records = esci_records[:6]
    data = tmp_path / "records.jsonl"
    write_jsonl(data, records)
    out = tmp_path / "samples.jsonl"
    shard_dir = output_paths(out)["shards"]
    args = ["passn", "sample", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out),
            "--n", "2", "--temperature", "1.0", "--top-p", "1.0", "--max-new-tokens", "16", "--seed", "3",
            "--backend", "hf", "--shard-size", "1", "--batch-size", "1", "-o", "device=cpu"]

    proc = run_cli(args)
    deadline = time.monotonic() + 120
    while len(list(shard_dir.glob("shard-*.jsonl"))) < 2:  # killed mid-run, after some shards committed
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(list(shard_dir.glob("shard-*.jsonl")))
    assert proc.returncode == -signal.SIGKILL and not out.exists() and 2 <= committed < len(records)

    # a rerun with other sampling settings is refused, and leaves the interrupted run as it was
    refused = run_cli([a if a != "16" else "24" for a in args])
    output, _ = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "max_new_tokens: 16 -> 24" in output
    assert len(list(shard_dir.glob("shard-*.jsonl"))) == committed

    resumed = run_cli(args)
    output, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, output
    rows = list(read_samples(out))
    assert [r.id for r in rows] == [r.id for r in records]  # every prompt once, in input order
    assert all(len(r.responses) == 2 for r in rows)
    summary = json.loads(output_paths(out)["summary"].read_text())
    assert summary["shards_resumed"] == committed and summary["samples"] == 2 * len(records)
    assert "pass@2 of" in output and "pass@1" in output  # the summary table

    # shards are seeded by position, so the killed-and-resumed file equals an uninterrupted run
    reference = tmp_path / "reference.jsonl"
    settings = PassnShardSettings(n=2, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=3, shard_size=1)
    sample_passn(str(tiny_model_dir), records, reference, settings, backend=backend)
    assert out.read_text() == reference.read_text()
