"""Kill `taosr1 cot generate` with SIGKILL mid-run, rerun the same command: nothing lost, redone or duplicated."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

from loopback import chat_app, serve_in_thread

from taosr1_plugins.cot.generate import output_paths
from taosr1_plugins.core.jsonl import read_jsonl, write_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import get_scheme

HINT_RE = re.compile(r"Hint: human raters judged this pair (\w+) ")
PAIR_RE = re.compile(r"Now judge this pair\.\n\nQuery: (.*)\n")


def slow_teacher(msgs, n):
    """Answers E unless hinted; hinted I gets garbage (so I records are dropped). 50 ms per answer."""
    user = msgs[-1]["content"]
    hint = HINT_RE.search(user)
    label = hint.group(1) if hint else "E"
    if label == "I":
        return 200, "no idea", 0.05
    return 200, f"<think>\nreasoning about it\n</think>\n<answer>{label}</answer>", 0.05


def test_sigkill_and_resume(esci_records, tmp_path):
    records = esci_records[:60]
    # Queries identify records in the server's log; the sample has one product per query.
    assert len({r.query for r in records}) == len(records)
    data = tmp_path / "in.jsonl"
    write_jsonl(data, records)
    out = tmp_path / "cot.jsonl"
    paths = output_paths(out)
    partial = paths["ledger"].with_name(paths["ledger"].name + ".partial")

    app = chat_app(slow_teacher)
    with serve_in_thread(app) as base:
        command = [
            sys.executable, "-m", "taosr1_plugins.cli", "cot", "generate", "--data", str(data), "--out", str(out),
            "--teacher", "openai", "-o", "model=m", "-o", f"base_url={base}/v1", "-o", "api_key_env=TAOSR1_TEST_NO_KEY",
            "-o", "concurrency=2", "--batch-size", "4", "--retries", "1", "--no-progress",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not (partial.exists() and len(partial.read_bytes().splitlines()) >= 15):
            assert first.poll() is None, first.stdout.read().decode()
            assert time.monotonic() < deadline, "first run made no progress"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        assert not out.exists() and partial.exists()

        finished_before = {json.loads(line)["id"] for line in partial.read_bytes().splitlines() if line.endswith(b"}")}
        queries_before = {r.query for r in records if r.id in finished_before}
        requests_before = len(app.state.received)
        assert 15 <= len(finished_before) < len(records)

        second = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr

    # The rerun never asked about a record the first run had finished (kept or dropped).
    asked_again = {PAIR_RE.search(body["messages"][-1]["content"]).group(1) for body in app.state.received[requests_before:]}
    assert not asked_again & queries_before

    ledger = [json.loads(line) for line in paths["ledger"].read_text().splitlines()]
    assert Counter(row["id"] for row in ledger) == Counter(r.id for r in records)  # every record exactly once
    kept = read_jsonl(out, Record)
    expected = [r for r in records if r.label != "I"]
    assert [r.id for r in kept] == [r.id for r in expected]  # input order, no duplicates
    assert all(r.cot == "reasoning about it" for r in kept)

    report = json.loads(paths["report"].read_text())
    labels = Counter(r.label for r in records)
    assert labels["I"] and labels["S"]  # the slice exercises drops and retries
    assert report["total"] == 60 and report["resumed"] == len(finished_before)
    assert report["kept_first"] == labels["E"]
    assert report["kept_retry"] == 60 - labels["E"] - labels["I"]
    assert report["dropped"] == labels["I"]
    per_level = {row["level"]: row for row in report["per_level"]}
    assert set(per_level) == set(get_scheme("esci").keys)
    assert per_level["I"]["dropped"] == labels["I"] and per_level["S"]["kept_retry"] == labels["S"]
    assert not partial.exists()
