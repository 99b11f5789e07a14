"""The CoT pipeline with the offline `template` teacher and with scripted teachers (retry/drop accounting)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from taosr1_plugins.cli import app as cli_app
from taosr1_plugins.cot.generate import CotOptions, generate_cot, output_paths
from taosr1_plugins.errors import OutputExistsError
from taosr1_plugins.core.formats import parse_response, render_response
from taosr1_plugins.core.jsonl import read_jsonl, write_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.cot.teachers import get_teacher


@pytest.mark.parametrize("dataset", ["esci_records", "kuaisearch_records"])
def test_template_teacher_keeps_everything_with_gold_labels(dataset, request, tmp_path):
    records = request.getfixturevalue(dataset)
    out = tmp_path / "cot.jsonl"
    report = generate_cot(records, get_teacher("template"), out, teacher_name="template")

    assert (report.total, report.kept_first, report.kept_retry, report.dropped) == (len(records), len(records), 0, 0)
    kept = read_jsonl(out, Record)
    assert [r.id for r in kept] == [r.id for r in records]
    scheme = get_scheme(records[0].scheme)
    for original, record in zip(records, kept):
        assert record.label == original.label and record.query == original.query
        assert record.cot and "<think>" not in record.cot and "<answer>" not in record.cot
        level = scheme.level(record.label)
        assert level.definition in record.cot and f"Conclusion: {level.name}" in record.cot
        # The kept trace round-trips through the training format with the gold label.
        assert parse_response(render_response(record.cot, record.label, scheme, "think_answer"), scheme) == (
            record.label, record.cot, True)
    saved = json.loads(output_paths(out)["report"].read_text())
    assert saved["kept"] == len(records) and sum(c["total"] for c in saved["per_level"]) == len(records)
    assert not output_paths(out)["ledger"].with_name("cot.ledger.jsonl.partial").exists()


def test_template_reasoning_states_constraints_item_and_comparison(esci_records):
    record = next(r for r in esci_records if r.item.brand and r.item.brand.lower() in r.query.lower())
    text = get_teacher("template").generate([_request(record)])[0]
    label, reasoning, ok = parse_response(text, get_scheme("esci"), "think_answer")
    assert ok and label == record.label
    assert f"the brand '{record.item.brand}'" in reasoning
    assert record.item.title in reasoning and "query terms appear in the item" in reasoning


def _request(record):
    from taosr1_plugins.cot.teachers import build_request

    return build_request(record, get_scheme(record.scheme))


class ScriptedTeacher:
    """Answers by a rule on (record, attempt, hint); records every request it sees."""

    def __init__(self, rule):
        self.rule, self.seen = rule, []

    def generate(self, requests):
        self.seen.extend(requests)
        return [self.rule(r) for r in requests]


def _answer(label, scheme="esci"):
    return render_response("because reasons", label, get_scheme(scheme), "think_answer")


def test_retry_with_hint_then_drop(esci_records, tmp_path):
    records = [next(r for r in esci_records if r.label == lab) for lab in ("E", "S", "I")]

    def rule(request):
        if request.record.label == "E":
            return _answer("E")  # right first time
        if request.record.label == "S":
            return _answer(request.hint_label) if request.hint_label else _answer("E")  # right once hinted
        return "I think it is irrelevant"  # never well formed

    teacher = ScriptedTeacher(rule)
    report = generate_cot(records, teacher, tmp_path / "o.jsonl", pool=esci_records, options=CotOptions(retries=2, k=2))
    assert (report.kept_first, report.kept_retry, report.dropped, report.teacher_requests) == (1, 1, 1, 1 + 2 + 3)
    by_record = {}
    for request in teacher.seen:
        by_record.setdefault(request.record.label, []).append(request)
    assert [r.attempt for r in by_record["I"]] == [0, 1, 2]
    assert [r.hint_label for r in by_record["I"]] == [None, "I", "I"]
    assert all(len(r.neighbours) == 2 for r in teacher.seen)
    assert [r.label for r in read_jsonl(tmp_path / "o.jsonl", Record)] == ["E", "S"]
    ledger = [json.loads(line) for line in output_paths(tmp_path / "o.jsonl")["ledger"].read_text().splitlines()]
    dropped = [row for row in ledger if row["outcome"] == "dropped"]
    assert dropped[0]["why"] == "malformed response" and dropped[0]["attempts"] == 3
    per_level = {c.level: c for c in report.per_level}
    assert (per_level["S"].kept_retry, per_level["I"].dropped, per_level["C"].total) == (1, 1, 0)


def test_no_hint_option(esci_records, tmp_path):
    teacher = ScriptedTeacher(lambda r: _answer("C"))
    records = [next(r for r in esci_records if r.label == "E")]
    report = generate_cot(records, teacher, tmp_path / "o.jsonl", options=CotOptions(retries=1, hint_on_retry=False))
    assert report.dropped == 1 and [r.hint_label for r in teacher.seen] == [None, None]


def test_resume_skips_finished_and_dropped_records(esci_records, tmp_path):
    records = esci_records[:10]
    out = tmp_path / "o.jsonl"
    ledger = output_paths(out)["ledger"]
    partial = ledger.with_name(ledger.name + ".partial")
    # An earlier run finished two records (one kept, one dropped) and was killed mid-line.
    partial.write_text(
        json.dumps({"id": records[0].id, "outcome": "kept", "attempts": 2, "cot": "earlier"}) + "\n"
        + json.dumps({"id": records[1].id, "outcome": "dropped", "attempts": 3, "why": "x", "last_response": ""}) + "\n"
        + '{"id": "torn'
    )
    teacher = get_teacher("template")
    seen = []
    original = teacher.generate
    teacher.generate = lambda requests: (seen.extend(r.record.id for r in requests), original(requests))[1]
    report = generate_cot(records, teacher, out, options=CotOptions(batch_size=3))
    assert set(seen) == {r.id for r in records[2:]} and len(seen) == 8
    assert (report.resumed, report.kept_first, report.kept_retry, report.dropped) == (2, 8, 1, 1)
    kept = read_jsonl(out, Record)
    assert [r.id for r in kept] == [records[0].id] + [r.id for r in records[2:]]
    assert kept[0].cot == "earlier"
    assert not partial.exists() and ledger.exists()
    with pytest.raises(OutputExistsError):
        generate_cot(records, teacher, out)
    assert generate_cot(records, teacher, out, overwrite=True).kept_first == 10


# --------------------------------------------------------------------------------------------------
# CLI


def test_cli_template_run(esci_records, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, esci_records[:20])
    out = tmp_path / "out" / "cot.jsonl"
    result = CliRunner().invoke(
        cli_app, ["cot", "generate", "--data", str(data), "--out", str(out), "--teacher", "template", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(out, Record)) == 20
    assert "20/20 kept" in result.output
    assert json.loads(output_paths(out)["report"].read_text())["kept_first"] == 20
    again = CliRunner().invoke(cli_app, ["cot", "generate", "--data", str(data), "--out", str(out), "--no-progress"])
    assert again.exit_code != 0 and "--overwrite" in again.output


@pytest.mark.parametrize(
    "bad_line, field",
    [
        ('{"id": "x", "query": "q", "item": {"title": "t"}, "scheme": "esci"}', "label"),
        ('{"id": "x", "query": "q", "item": {"title": "t"}, "label": "Z", "scheme": "esci"}', "label"),
        ('{"id": "x", "query": "q", "item": {}, "label": "E", "scheme": "esci"}', "item.title"),
        ('{"id": "0", "query": "q", "item": {"title": "t"}, "label": "E", "scheme": "esci"}', "id"),
        ('{"id": "x", "query": "q", "item": {"title": "t"}, "label": "E", "scheme": "nope"}', "scheme"),
        ('{"id": "x", ', None),
    ],
)
def test_cli_bad_input_names_file_line_field(tmp_path, bad_line, field):
    good = '{"id": "%s", "query": "q", "item": {"title": "t"}, "label": "E", "scheme": "esci"}'
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join([good % 0, good % 1, bad_line]) + "\n")
    out = tmp_path / "cot.jsonl"
    result = CliRunner().invoke(cli_app, ["cot", "generate", "--data", str(data), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "bad.jsonl:3:" in message
    if field:
        assert f"field '{field}'" in message
    assert list(tmp_path.iterdir()) == [data]  # no output, no partial, no report


def test_cli_bad_teacher_options(tmp_path, esci_records):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, esci_records[:2])
    runner = CliRunner()
    args = ["cot", "generate", "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--no-progress"]
    result = runner.invoke(cli_app, args + ["--teacher", "nope"])
    assert result.exit_code == 2 and "unknown teacher 'nope'" in result.output
    result = runner.invoke(cli_app, args + ["--teacher", "template", "-o", "colour=red"])
    assert result.exit_code == 2 and "colour" in result.output
    result = runner.invoke(cli_app, args + ["--teacher", "openai", "-o", "model=m", "-o", "base_url=http://127.0.0.1:9/v1",
                                            "-o", "temperature=hot"])
    assert result.exit_code == 2 and "temperature" in result.output
    result = runner.invoke(cli_app, args + ["-o", "novalue"])
    assert result.exit_code != 0 and "key=value" in " ".join(result.output.split())


def test_teacher_failure_keeps_finished_records_for_a_rerun(esci_records, tmp_path):
    from taosr1_plugins.cot.teachers import TeacherError

    records = esci_records[:9]
    out = tmp_path / "o.jsonl"
    template = get_teacher("template")
    calls = []

    def flaky(requests):
        calls.append(len(requests))
        if len(calls) == 2:
            raise TeacherError("endpoint down")
        return template.generate(requests)

    teacher = ScriptedTeacher(None)
    teacher.generate = flaky
    with pytest.raises(TeacherError):
        generate_cot(records, teacher, out, options=CotOptions(batch_size=4))
    ledger = output_paths(out)["ledger"]
    partial = ledger.with_name(ledger.name + ".partial")
    assert not out.exists() and len(partial.read_text().splitlines()) == 4
    report = generate_cot(records, template, out, options=CotOptions(batch_size=4))
    assert (report.resumed, report.kept_first) == (4, 9)
    assert [r.id for r in read_jsonl(out, Record)] == [r.id for r in records]
