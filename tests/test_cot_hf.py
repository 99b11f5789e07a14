"""The `hf` teacher on the tiny random model: batched left-padded generation, and the pipeline around it."""

from __future__ import annotations

import json

import pytest

from taosr1_plugins.cot.generate import CotOptions, generate_cot, output_paths
from taosr1_plugins.cot.teachers import TeacherRequest, get_teacher


@pytest.fixture(scope="module")
def teacher(tiny_model_dir):
    return get_teacher("hf", model=str(tiny_model_dir), max_new_tokens=6, temperature=0, batch_size=4)


def test_batched_greedy_generation_matches_one_by_one(teacher):
    prompts = ["hi", "a much longer prompt about red running shoes for men, size 10", "半身裙"]
    requests = [TeacherRequest(record=None, messages=[{"role": "user", "content": p}]) for p in prompts]
    batched = teacher.generate(requests)
    assert len(batched) == 3 and all(isinstance(text, str) for text in batched)
    # Left padding: each row continues its own prompt, so a batch gives what single prompts give.
    assert [teacher.generate([r])[0] for r in requests] == batched
    assert teacher.chat.tokenizer.padding_side == "left" and teacher.chat.device == "cpu"


def test_sampling_options_are_validated(tiny_model_dir):
    with pytest.raises(ValueError, match="temperature"):
        get_teacher("hf", model=str(tiny_model_dir), temperature=-1)


def test_pipeline_with_hf_teacher_drops_garbage(teacher, esci_records, tmp_path):
    records = esci_records[:4]
    out = tmp_path / "cot.jsonl"
    report = generate_cot(records, teacher, out, options=CotOptions(retries=1, batch_size=4, k=2), teacher_name="hf")
    assert (report.total, report.dropped, report.teacher_requests) == (4, 4, 8)
    ledger = [json.loads(line) for line in output_paths(out)["ledger"].read_text().splitlines()]
    assert all(row["why"] == "malformed response" for row in ledger)
