"""Status 2 and one `error:` line, never a traceback, for bad input to every command, through the
console script's own `main()`; and nothing written beside the inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostile_helpers import run_main, snapshot

RECORD = {"id": "a", "query": "q", "item": {"title": "t"}, "label": "E", "scheme": "esci"}
UNLABELLED = {"id": "a", "query": "q", "item": {"title": "t"}, "scheme": "esci"}


def setup(folder: Path) -> dict[str, Path]:
    files = {
        "records": (folder / "records.jsonl", json.dumps(RECORD) + "\n"),
        "unlabelled": (folder / "unlabelled.jsonl", json.dumps(UNLABELLED) + "\n"),
        "broken": (folder / "broken.jsonl", '{"id": "a", "query":\n'),
        "empty": (folder / "empty.jsonl", ""),
        "scores": (folder / "scores.jsonl", json.dumps({"id": "a"}) + "\n"),
    }
    for path, text in files.values():
        path.write_text(text)
    (folder / "run").mkdir()
    return {name: path for name, (path, _) in files.items()} | {"missing": folder / "missing.jsonl",
                                                                 "run": folder / "run", "dir": folder}


# (command words, expected text in the message); {name} is a path from setup()
CASES = {
    "data import: unknown source": (["data", "import", "--source", "nope", "--input", "{records}", "--out", "{dir}/o.jsonl"], "unknown importer"),
    "data import: missing input": (["data", "import", "--source", "kuaisearch", "--input", "{missing}", "--out", "{dir}/o.jsonl"], "missing.jsonl"),
    "data validate: broken line": (["data", "validate", "{broken}"], "broken.jsonl:1"),
    "data validate: unknown scheme option": (["data", "validate", "{records}", "--scheme", "nope"], "nope"),
    "data split: missing input": (["data", "split", "{missing}", "--out-dir", "{dir}/s"], "missing.jsonl"),
    "cot generate: unlabelled": (["cot", "generate", "--data", "{unlabelled}", "--out", "{dir}/c.jsonl"], "field 'label'"),
    "cot generate: unknown teacher": (["cot", "generate", "--data", "{records}", "--out", "{dir}/c.jsonl", "--teacher", "nope"], "unknown teacher"),
    "cot generate: missing data": (["cot", "generate", "--data", "{missing}", "--out", "{dir}/c.jsonl"], "missing.jsonl"),
    "export llamafactory: no cot": (["export", "llamafactory", "--data", "{records}", "--out-dir", "{dir}/lf"], "cot"),
    "export llamafactory: missing data": (["export", "llamafactory", "--data", "{missing}", "--out-dir", "{dir}/lf"], "missing.jsonl"),
    "models prepare: unknown model": (["models", "prepare", "nope"], "nope"),
    "passn sample: missing data": (["passn", "sample", "--model", "x", "--data", "{missing}", "--out", "{dir}/p.jsonl"], "missing.jsonl"),
    "passn sample: unknown backend": (["passn", "sample", "--model", "x", "--backend", "nope", "--data", "{records}", "--out", "{dir}/out/p.jsonl"], "unknown generation backend"),
    "passn sample: missing model": (["passn", "sample", "--model", "./nowhere", "--data", "{records}", "--out", "{dir}/out/p.jsonl"], "no such model directory"),
    "passn difficulty: bad thresholds": (["passn", "difficulty", "--samples", "{records}", "--out", "{dir}/d.jsonl", "--easy", "0.1", "--medium", "0.9"], "thresholds"),
    "passn difficulty: not samples": (["passn", "difficulty", "--samples", "{records}", "--out", "{dir}/d.jsonl"], "records.jsonl:1"),
    "passn pairs: missing samples": (["passn", "pairs", "--samples", "{missing}", "--out-dir", "{dir}/pairs"], "missing.jsonl"),
    "grpo prepare: unlabelled": (["grpo", "prepare", "--data", "{unlabelled}", "--out-dir", "{dir}/g"], "labelled"),
    "score: unknown backend": (["score", "--model", "x", "--data", "{records}", "--out", "{dir}/s.jsonl", "--backend", "nope"], "nope"),
    "score: missing model": (["score", "--model", "./nowhere", "--data", "{records}", "--out", "{dir}/s.jsonl"], "no such model directory"),
    "calibrate: missing scores": (["calibrate", "--scores", "{missing}", "--out", "{dir}/c.json"], "missing.jsonl"),
    "calibrate: bad rows": (["calibrate", "--scores", "{scores}", "--out", "{dir}/c.json"], "scores.jsonl:1"),
    "serve: missing model": (["serve", "--model", "./nowhere", "--port", "1"], "no such model directory"),
    "eval: names mismatch": (["eval", "--scores", "{scores}", "--report", "{dir}/r.html", "--name", "a", "--name", "b"], "--name"),
    "eval: missing scores": (["eval", "--scores", "{missing}", "--report", "{dir}/r.html"], "missing.jsonl"),
    "post-cot: responses without scheme": (["post-cot", "--data", "{records}", "--out", "{dir}/p.jsonl", "--responses"], "--scheme"),
    "post-cot: missing data": (["post-cot", "--data", "{missing}", "--out", "{dir}/p.jsonl"], "missing.jsonl"),
    "run: missing config": (["run", "{missing}"], "missing.jsonl"),
    "run: unknown stage": (["run", "{records}", "--until", "nope"], "unknown stage"),
    "report: not a run": (["report", "{run}"], "no manifest"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_to_every_command_exits_2(tmp_path, capsys, monkeypatch, case):
    paths = setup(tmp_path)
    words, message = CASES[case]
    args = [w.format(**paths) for w in words]
    before = snapshot(tmp_path)
    code, err = run_main(capsys, monkeypatch, *args)
    assert code == 2, err
    assert "Traceback" not in err and message in err, err
    assert snapshot(tmp_path) == before  # inputs byte-identical, no output, no temporary
