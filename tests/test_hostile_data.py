"""Careless and hostile input to `taosr1 data` and the record readers: never a user's file destroyed,
never a traceback, always status 2 with FILE:LINE: field 'x': problem, and nothing written on error."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_helpers import assert_clean_failure, run_main, snapshot
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.jsonl import atomic_write, write_jsonl, write_jsonl_all
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.data.validation import read_checked_records

CF_HEADER = '"id","query","product_title","product_description","median_relevance","relevance_variance"\n'


def record_line(i: int, **changes) -> str:
    row = Record(id=f"r{i}", query=f"query {i % 3}", item=Item(title=f"title {i}"), label="E", scheme="esci")
    data = row.model_dump(exclude_none=True) | changes
    return json.dumps(data)


def records_file(path: Path, n: int = 6, **changes_at: dict) -> Path:
    lines = [record_line(i, **changes_at.get(f"line{i + 1}", {})) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def taosr1(capsys, monkeypatch):
    return lambda *args: run_main(capsys, monkeypatch, *args)


# --- data loss ------------------------------------------------------------------------------------


def test_import_refuses_an_output_that_is_its_input(tmp_path, taosr1):
    raw = tmp_path / "raw.csv"
    raw.write_text(CF_HEADER + "1,shoes,Red shoes,,4,0\n")
    before = snapshot(tmp_path)
    for spelled in (raw, tmp_path / "." / "raw.csv"):
        code, err = taosr1("data", "import", "--source", "crowdflower", "--input", raw, "--out", spelled)
        assert_clean_failure(code, err, before, tmp_path, "is the input")


def test_a_hard_link_to_the_input_is_the_input(tmp_path, taosr1):
    records = records_file(tmp_path / "records.jsonl")
    os.link(records, tmp_path / "alias.jsonl")
    before = snapshot(tmp_path)
    code, err = taosr1("post-cot", "--data", records, "--out", tmp_path / "alias.jsonl")
    assert_clean_failure(code, err, before, tmp_path, "is the input")


def test_eval_refuses_a_report_over_its_scores(tmp_path, taosr1):
    scores = tmp_path / "scores.jsonl"
    scores.write_text('{"id": "x"}\n')
    before = snapshot(tmp_path)
    code, err = taosr1("eval", "--scores", scores, "--report", scores)
    assert_clean_failure(code, err, before, tmp_path, "is the input")


@pytest.mark.parametrize("command", ["import", "split"])
def test_outputs_that_are_not_regular_files_are_refused(tmp_path, taosr1, command):
    records = records_file(tmp_path / "records.jsonl")
    fifo = tmp_path / "out" / "test.jsonl"
    fifo.parent.mkdir()
    os.mkfifo(fifo)  # stands in for /dev/null: a rename onto it would replace the node
    (tmp_path / "out" / "train.jsonl").mkdir()
    before = snapshot(tmp_path)
    if command == "import":
        raw = tmp_path / "raw.csv"
        raw.write_text(CF_HEADER + "1,shoes,Red shoes,,4,0\n")
        before = snapshot(tmp_path)
        code, err = taosr1("data", "import", "--source", "crowdflower", "--input", raw, "--out", fifo)
    else:
        code, err = taosr1("data", "split", records, "--out-dir", tmp_path / "out")
    assert_clean_failure(code, err, before, tmp_path, "not a regular file" if command == "import" else "directory")
    assert fifo.exists() and not fifo.is_file()


@pytest.mark.parametrize("occupant", ["file", "folder"])
def test_models_prepare_never_replaces_a_users_folder(tmp_path, taosr1, occupant):
    target = tmp_path / "mine"
    if occupant == "file":
        target.write_text("my notes")
    else:
        target.mkdir()
        (target / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    code, err = taosr1("models", "prepare", "tiny", "--out", target, "--force")
    assert_clean_failure(code, err, before, tmp_path, "refusing to replace it")


def test_split_writes_every_output_or_none(tmp_path, taosr1):
    records = records_file(tmp_path / "records.jsonl", n=30)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "test.jsonl").mkdir()  # the last output cannot be written
    before = snapshot(tmp_path)
    code, err = taosr1("data", "split", records, "--out-dir", tmp_path / "out")
    assert_clean_failure(code, err, before, tmp_path, "test.jsonl")


def test_write_all_or_none_when_a_later_file_fails_midway(tmp_path):
    def rows_then_crash():
        yield {"a": 1}
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        write_jsonl_all({tmp_path / "a.jsonl": [{"x": 1}], tmp_path / "b.jsonl": rows_then_crash()})
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "/abs", "x\\y"])
def test_split_names_cannot_leave_the_output_folder(tmp_path, taosr1, name):
    (tmp_path / "work").mkdir()
    records = records_file(tmp_path / "work" / "records.jsonl")
    before = snapshot(tmp_path)
    code, err = taosr1("data", "split", records, "--out-dir", tmp_path / "work" / "out", "--names", f"a,{name},c")
    assert code == 2 and "--names" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["export", "pairs"])
def test_dataset_names_cannot_leave_the_output_folder(tmp_path, taosr1, command):
    (tmp_path / "work").mkdir()
    data = records_file(tmp_path / "work" / "records.jsonl")
    before = snapshot(tmp_path)
    if command == "export":
        args = ["export", "llamafactory", "--data", data, "--out-dir", tmp_path / "work" / "lf", "--name", "../../x"]
    else:
        args = ["passn", "pairs", "--samples", data, "--out-dir", tmp_path / "work" / "p", "--name", "../x"]
    code, err = taosr1(*args)
    assert code == 2 and "--name" in err and "plain file name" in err and "Traceback" not in err, err
    assert snapshot(tmp_path) == before


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(
        f"""
        import os, signal
        from taosr1_plugins.core.jsonl import atomic_write
        with atomic_write({str(out)!r}) as fh:
            fh.write("half")
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # what SIGKILL leaves

    write_jsonl(out, [{"a": 1}])
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    out = tmp_path / "out.jsonl"
    with atomic_write(out) as fh:
        fh.write("first")
        write_jsonl(out, [{"a": 1}])  # a second writer of the same path must not delete ours
    assert out.read_text() == "first"


# --- located errors -------------------------------------------------------------------------------


def test_the_message_format_is_file_line_field_colon_problem():
    assert str(DataError("f.jsonl", 3, "query", "empty")) == "f.jsonl:3: field 'query': empty"
    assert str(DataError("f.jsonl", 3, None, "invalid JSON")) == "f.jsonl:3: invalid JSON"


def _with_bad_byte(path: Path, line: int, field: str, lines: list[str], gz: bool) -> Path:
    text = "".join(lines)
    raw = text.encode()
    target = lines[line - 1]
    start = len("".join(lines[: line - 1]).encode())
    value_at = target.index(field) + len(field) + 4  # inside the field's value
    raw = raw[: start + value_at] + b"\xff\xfe" + raw[start + value_at :]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("command", ["validate", "split", "cot", "score", "post-cot"])
def test_non_utf8_bytes_name_their_line_and_field(tmp_path, taosr1, command, gz):
    # many lines, so a chunked decoder would report the line its chunk starts on
    lines = [record_line(i, query="q" * 500 + str(i), cot="because") + "\n" for i in range(200)]
    data = _with_bad_byte(tmp_path / ("r.jsonl.gz" if gz else "r.jsonl"), 137, '"title"', lines, gz)
    before = snapshot(tmp_path)
    args = {
        "validate": ["data", "validate", data],
        "split": ["data", "split", data, "--out-dir", tmp_path / "s"],
        "cot": ["cot", "generate", "--data", data, "--out", tmp_path / "cot.jsonl"],
        "score": ["score", "--model", tmp_path / "no-model", "--data", data, "--out", tmp_path / "s.jsonl"],
        "post-cot": ["post-cot", "--data", data, "--out", tmp_path / "p.jsonl"],
    }[command]
    code, err = taosr1(*args)
    field = "item.title"
    assert_clean_failure(code, err, before, tmp_path, f"{data}:137:", field, "not valid UTF-8 (byte 0xff)")


def test_non_utf8_in_a_csv_field_names_its_line_and_column(tmp_path, taosr1):
    rows = [CF_HEADER] + [f"{i},shoes {i},Red shoes {i},,4,0\n" for i in range(1, 400)]
    raw = _with_bad_byte(tmp_path / "raw.csv.gz", 301, "Red", rows, gz=True)
    before = snapshot(tmp_path)
    code, err = taosr1("data", "import", "--source", "crowdflower", "--input", raw, "--out", tmp_path / "o.jsonl")
    assert_clean_failure(code, err, before, tmp_path, f"{raw}:301: field 'product_title': not valid UTF-8")


def test_a_lone_surrogate_escape_in_json_is_refused_where_it_is(tmp_path, taosr1):
    data = records_file(tmp_path / "r.jsonl", n=4)
    lines = data.read_text().splitlines()
    lines[2] = lines[2].replace('"query 2"', '"bad \\ud800"')
    data.write_text("\n".join(lines) + "\n")
    before = snapshot(tmp_path)
    code, err = taosr1("data", "validate", data)
    assert_clean_failure(code, err, before, tmp_path, f"{data}:3: field 'query': lone surrogate U+D800")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_byte_order_mark_from_a_spreadsheet_export_is_not_part_of_the_header(tmp_path, taosr1, suffix):
    raw = tmp_path / f"export{suffix}"
    content = ("\ufeff" + CF_HEADER + "1,shoes,Red shoes,,4,0\n").encode()
    raw.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    code, err = taosr1("data", "import", "--source", "crowdflower", "--input", raw, "--out", tmp_path / "o.jsonl")
    assert code == 0, err
    assert json.loads((tmp_path / "o.jsonl").read_text())["id"] == "crowdflower-1"


def test_splitting_an_empty_file_is_an_error(tmp_path, taosr1):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    before = snapshot(tmp_path)
    code, err = taosr1("data", "split", empty, "--out-dir", tmp_path / "s")
    assert_clean_failure(code, err, before, tmp_path, "no records to split")


BAD_RECORDS = {
    "duplicate id": ({"line3": {"id": "r0"}}, 3, "id", "duplicate id"),
    "unknown scheme": ({"line2": {"scheme": "nope"}}, 2, "scheme", "nope"),
    "label outside scheme": ({"line4": {"label": "9"}}, 4, "label", "not a level"),
    "label NaN": ({"line2": {"label": "NaN"}}, 2, "label", "not a level"),
    "whitespace query": ({"line5": {"query": " \t "}}, 5, "query", "whitespace"),
    "whitespace title": ({"line1": {"item": {"title": "  "}}}, 1, "item.title", "whitespace"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
@pytest.mark.parametrize("command", ["validate", "split", "cot"])
def test_one_validation_for_every_command(tmp_path, taosr1, case, command):
    changes, line, field, problem = BAD_RECORDS[case]
    data = records_file(tmp_path / "r.jsonl", **changes)
    before = snapshot(tmp_path)
    args = {
        "validate": ["data", "validate", data],
        "split": ["data", "split", data, "--out-dir", tmp_path / "s"],
        "cot": ["cot", "generate", "--data", data, "--out", tmp_path / "cot.jsonl"],
    }[command]
    code, err = taosr1(*args)
    assert_clean_failure(code, err, before, tmp_path, f"{data}:{line}: field '{field}':", problem)
    with pytest.raises(DataError):
        read_checked_records(data)


@pytest.mark.parametrize("ratios", ["0,0,0", "-1,1,1", "nan,1,1", "inf,1,1", "1e308,1e308", "a,b", ""])
def test_bad_ratios_are_refused_before_reading(tmp_path, taosr1, ratios):
    data = records_file(tmp_path / "r.jsonl")
    before = snapshot(tmp_path)
    names = ",".join(f"s{i}" for i in range(len(ratios.split(","))))
    code, err = taosr1("data", "split", data, "--out-dir", tmp_path / "s", "--ratios", ratios, "--names", names)
    assert code == 2 and "--ratios" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before


# --- generated bad files --------------------------------------------------------------------------

IMPORTER_SAMPLES = {  # importer -> (suffix, a small good file)
    "crowdflower": (".csv", CF_HEADER + "".join(f"{i},shoes {i},Red shoes {i},<b>soft</b>,{1 + i % 4},0\n" for i in range(1, 9))),
    "home_depot": (".csv", "id,product_uid,product_title,search_term,relevance\n"
                   + "".join(f"{i},{100 + i},Drill {i},cordless drill,{1 + i % 3}.0\n" for i in range(1, 9))),
    "esci": (".csv", "example_id,query,esci_label,product_title,product_brand\n"
             + "".join(f"{i},iphone case,{'ESCI'[i % 4]},\"Case, clear {i}\",Acme\n" for i in range(1, 9))),
    "kuaisearch": (".jsonl", "".join(json.dumps({"query": f"q{i}", "item_title": f"t{i}", "score": i % 4}) + "\n"
                                     for i in range(8))),
}
GOOD_JSONL = "".join(record_line(i) + "\n" for i in range(8))


@st.composite
def damaged(draw, text: str) -> bytes:
    raw = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if action == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b'"', b",", b"\n", b"{", b"\\u"]))
        elif action == "delete":
            del raw[at : at + draw(st.integers(1, 5))]
        else:
            del raw[at:]
    return bytes(raw)


def _run_on(tmp_path: Path, capsys, monkeypatch, content: bytes, suffix: str, command: list[str]) -> None:
    """``command`` ({src} and {out} filled in) on a damaged file: success, or status 2 located in that file
    with every file unchanged and nothing written."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per generated example
    src = folder / f"in{suffix}"
    src.write_bytes(content)
    before = snapshot(folder)
    args = [str(a).format(src=src, out=folder / "out") for a in command]
    code, err = run_main(capsys, monkeypatch, *args)
    assert "Traceback" not in err
    if code != 0:
        assert code == 2, err
        assert err.startswith(f"error: {src}:"), err  # located in the input
        assert snapshot(folder) == before
    assert src.read_bytes() == content


@pytest.mark.parametrize("importer", sorted(IMPORTER_SAMPLES))
def test_the_good_samples_import(tmp_path, taosr1, importer):
    suffix, text = IMPORTER_SAMPLES[importer]
    (tmp_path / f"in{suffix}").write_text(text)
    code, err = taosr1("data", "import", "--source", importer, "--input", tmp_path / f"in{suffix}", "--out", tmp_path / "o.jsonl")
    assert code == 0, err
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 8  # the damage below is all that fails


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), importer=st.sampled_from(sorted(IMPORTER_SAMPLES)))
def test_generated_damaged_files_import_or_fail_cleanly(tmp_path, capsys, monkeypatch, data, importer):
    suffix, text = IMPORTER_SAMPLES[importer]
    content = data.draw(damaged(text))
    _run_on(tmp_path, capsys, monkeypatch, content, suffix,
            ["data", "import", "--source", importer, "--input", "{src}", "--out", "{out}/o.jsonl"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=damaged(GOOD_JSONL), command=st.sampled_from(["validate", "split", "post-cot"]))
def test_generated_damaged_records_validate_or_fail_cleanly(tmp_path, capsys, monkeypatch, content, command):
    args = {
        "validate": ["data", "validate", "{src}"],
        "split": ["data", "split", "{src}", "--out-dir", "{out}"],
        "post-cot": ["post-cot", "--data", "{src}", "--out", "{out}/p.jsonl"],
    }[command]
    _run_on(tmp_path, capsys, monkeypatch, content, ".jsonl", args)
