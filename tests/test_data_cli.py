"""`taosr1 data import | validate | split`, and the record, validation and split logic beneath them."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from taosr1_plugins.builtin.schemes import BUILTIN_SCHEMES
from taosr1_plugins.cli import app
from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.jsonl import dumps, read_jsonl, write_jsonl
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.data.splits import GROUP_KEYS, parse_ratios, sample_items, split_groups
from taosr1_plugins.data.validation import validate_records

SCHEMES = {scheme.name: scheme for scheme in BUILTIN_SCHEMES}
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def cli_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- records: generated round trips and broken lines ----------------------------------------------

# JSON cannot carry lone surrogates; everything else, newlines and all, must survive.
# A blank id, query or title is invalid (records.py), so generated text has something besides whitespace.
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)
maybe_text = st.none() | text


@st.composite
def records(draw, id_: str | None = None) -> Record:
    scheme = draw(st.sampled_from(BUILTIN_SCHEMES))
    return Record(
        id=id_ or draw(text),
        query=draw(text),
        item=Item(
            title=draw(text),
            description=draw(maybe_text),
            brand=draw(maybe_text),
            color=draw(maybe_text),
            category=draw(maybe_text),
            attributes=draw(st.dictionaries(text, text, max_size=3)),
        ),
        label=draw(st.none() | st.sampled_from(scheme.keys)),
        scheme=scheme.name,
        cot=draw(maybe_text),
        tags=draw(st.lists(st.sampled_from(["negation", "alternative", "qa", "knowledge"]), unique=True)),
        source=draw(maybe_text),
    )


@st.composite
def record_lists(draw, min_size: int = 0) -> list[Record]:
    n = draw(st.integers(min_size, 12))
    return [draw(records(id_=f"r{i}")) for i in range(n)]  # ids unique, as validation requires


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(rows=record_lists())
def test_records_round_trip_and_validate(tmp_path, rows):
    path = tmp_path / "records.jsonl"
    assert write_jsonl(path, rows) == len(rows)
    assert read_jsonl(path, Record) == rows
    counts = validate_records(path, resolve_scheme=SCHEMES.__getitem__)
    assert counts == Counter((r.scheme, r.label) for r in rows)


def truncated_json(line: str, cut: int) -> str:
    """A proper prefix of one JSON object line: never valid JSON, never blank."""
    return line[: 1 + cut % (len(line) - 1)]


@SETTINGS
@given(rows=record_lists(min_size=1), data=st.data())
def test_broken_jsonl_line_is_reported_on_its_line(tmp_path, rows, data):
    lines = [dumps(r) for r in rows]
    at = data.draw(st.integers(0, len(lines)), label="broken line index")
    victim = json.loads(data.draw(st.sampled_from(lines)))
    kind = data.draw(st.sampled_from(["truncated", "not an object", "missing field", "bad label", "duplicate id"]))
    if kind == "truncated":
        broken, field = truncated_json(dumps(victim), data.draw(st.integers(0, 10_000))), None
    elif kind == "not an object":
        broken, field = json.dumps(data.draw(st.lists(st.integers()) | st.integers() | st.just("x"))), None
    elif kind == "missing field":
        field = data.draw(st.sampled_from(["id", "query", "item", "scheme"]))
        broken = json.dumps({k: v for k, v in victim.items() if k != field})
    elif kind == "bad label":
        broken, field = json.dumps({**victim, "id": "fresh", "label": "no-such-level"}), "label"
    else:
        broken, field = json.dumps(victim), "id"
        at = len(lines)  # a duplicate is the second occurrence
    # blank lines are skipped but still counted
    lines.insert(at, broken)
    blanks = data.draw(st.integers(0, 2))
    lines[:0] = [""] * blanks
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(DataError) as info:
        validate_records(path, resolve_scheme=SCHEMES.__getitem__)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), blanks + at + 1, field)
    if kind in ("truncated", "missing field"):  # the lead's reader locates the same lines
        with pytest.raises(DataError) as info:
            read_jsonl(path, Record)
        assert info.value.line == blanks + at + 1


# --- splits ---------------------------------------------------------------------------------------


@st.composite
def split_cases(draw):
    queries = draw(
        st.lists(
            st.sampled_from(["Led Lights", "led  lights", "projector", "wine rack", "q5", "q6", "q7"]), max_size=40
        )
    )
    rows = [Record(id=f"r{i}", query=q, item=Item(title="t"), scheme="taosr1") for i, q in enumerate(queries)]
    ratios = draw(st.lists(st.floats(0, 5), min_size=1, max_size=4).filter(lambda r: sum(r) > 0))
    return rows, ratios, draw(st.integers(0, 3))


@settings(max_examples=150, deadline=None)
@given(case=split_cases())
def test_split_by_query_never_leaks_and_is_deterministic(case):
    rows, ratios, seed = case
    key = GROUP_KEYS["query"]
    parts = split_groups(rows, key, ratios, seed)
    assert len(parts) == len(ratios)
    assert sorted(r.id for part in parts for r in part) == sorted(r.id for r in rows)
    owners: dict[str, int] = {}
    for i, part in enumerate(parts):
        for r in part:
            assert owners.setdefault(key(r), i) == i, "a query landed in two splits"
    assert split_groups(rows, key, ratios, seed) == parts
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    assert [sorted(r.id for r in p) for p in split_groups(shuffled, key, ratios, seed)] == [
        sorted(r.id for r in p) for p in parts
    ]
    for ratio, part in zip(ratios, parts):
        if ratio == 0:
            assert not part


def test_split_sizes_follow_ratios_with_many_groups():
    rows = [Record(id=str(i), query=f"q{i % 500}", item=Item(title="t"), scheme="taosr1") for i in range(5000)]
    sizes = [len(p) for p in split_groups(rows, GROUP_KEYS["query"], [0.8, 0.1, 0.1], seed=0)]
    assert sizes == [4000, 500, 500]  # 500 groups of exactly 10


def test_sampled_split_keeps_order_and_is_seeded():
    items = list(range(100))
    sample = sample_items(items, 30, seed=1)
    assert len(sample) == 30 and sample == sorted(sample) and set(sample) <= set(items)
    assert sample_items(items, 30, seed=1) == sample != sample_items(items, 30, seed=2)
    assert sample_items(items, None) == items == sample_items(items, 500)


@pytest.mark.parametrize("bad", ["", "a,b", "1,-1", "0,0", "nan,1"])
def test_parse_ratios_rejects(bad):
    with pytest.raises(ValueError):
        parse_ratios(bad)


# --- the CLI --------------------------------------------------------------------------------------


def test_import_validate_split_esci(tmp_path):
    out = tmp_path / "esci.jsonl"
    result = cli("data", "import", "--source", "esci", "--input", esci_sample_path(), "--out", out)
    assert result.exit_code == 0, result.output
    assert "wrote 200 records" in result.output and "esci E: 138" in result.output
    rows = read_jsonl(out, Record)
    assert Counter(r.label for r in rows) == {"E": 138, "S": 49, "I": 12, "C": 1}
    assert files_in(tmp_path) == ["esci.jsonl"]  # no temporary left behind

    result = cli("data", "validate", out)
    assert result.exit_code == 0, result.output
    assert "200 valid records" in result.output
    assert [line.strip() for line in result.output.splitlines()[1:]] == [
        "esci E: 138",
        "esci S: 49",
        "esci C: 1",
        "esci I: 12",
    ]

    # explicit ratios: the default is the run config's 0.7,0.1,0.2 (tests/test_settings_declared_once.py)
    result = cli("data", "split", out, "--by", "query", "--out-dir", tmp_path / "splits", "--seed", "3",
                 "--ratios", "0.8,0.1,0.1")
    assert result.exit_code == 0, result.output
    assert files_in(tmp_path / "splits") == ["dev.jsonl", "test.jsonl", "train.jsonl"]
    sizes = {name: len(read_jsonl(tmp_path / "splits" / f"{name}.jsonl", Record)) for name in ("train", "dev", "test")}
    assert sizes == {"train": 160, "dev": 20, "test": 20}  # 200 distinct queries
    assert "train: 160 records, 160 query groups" in result.output


def test_import_limit_and_scheme_from_yaml(tmp_path):
    yaml_file = tmp_path / "exact_or_not.yaml"
    yaml_file.write_text(
        "name: exact_or_not\nlevels:\n"
        "  - {key: 'yes', name: Exact match, definition: Exactly what was asked for.}\n"
        "  - {key: 'no', name: Not exact, definition: Anything else.}\n"
        "raw_labels: {exact: 'yes', substitute: 'no', complement: 'no', irrelevant: 'no'}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    result = cli(
        "data", "import", "--source", "esci", "--input", esci_sample_path(), "--out", out, "--scheme", yaml_file
    )
    assert result.exit_code == 0, result.output
    assert Counter(r.label for r in read_jsonl(out, Record)) == {"yes": 138, "no": 62}
    # the YAML scheme is registered nowhere: the records name its file, so validation needs no --scheme
    assert {r.scheme_file for r in read_jsonl(out, Record)} == {str(yaml_file)}
    assert cli("data", "validate", out).exit_code == 0
    assert cli("data", "validate", out, "--scheme", yaml_file).exit_code == 0
    assert cli("data", "validate", out, "--scheme", "esci").exit_code != 0  # wrong scheme for these records

    result = cli("data", "import", "--source", "esci", "--input", esci_sample_path(), "--out", out, "--limit", "7")
    assert result.exit_code == 0 and len(read_jsonl(out, Record)) == 7


def test_import_real_crowdflower_and_split_without_query_overlap(tmp_path, shared_data):
    out = tmp_path / "cf.jsonl"
    assert (
        cli(
            "data",
            "import",
            "--source",
            "crowdflower",
            "--input",
            shared_data / "crowdflower" / "dev.csv.gz",
            "--out",
            out,
        ).exit_code
        == 0
    )
    result = cli("data", "split", out, "--out-dir", tmp_path / "s", "--names", "a,b", "--ratios", "3,1")
    assert result.exit_code == 0, result.output
    a, b = (read_jsonl(tmp_path / "s" / f"{n}.jsonl", Record) for n in "ab")
    assert len(a) + len(b) == 8289
    assert not {r.query.casefold() for r in a} & {r.query.casefold() for r in b}
    assert 0.65 < len(a) / 8289 < 0.85  # 215 queries of 8-113 rows: whole groups, so only roughly 3:1
    again = tmp_path / "again"
    assert cli("data", "split", out, "--out-dir", again, "--names", "a,b", "--ratios", "3,1").exit_code == 0
    assert (again / "a.jsonl").read_bytes() == (tmp_path / "s" / "a.jsonl").read_bytes()


BROKEN_CF = (
    '"id","query","product_title","product_description","median_relevance","relevance_variance"\n'
    '1,bridal shower decorations,Accent Pillow,"Red satin\npillow",1,0\n'
    "2,led christmas lights,Set of 10 LED Train Lights,,4,0\n"
)


@pytest.mark.parametrize(
    ("source", "content", "where"),
    [
        ("crowdflower", BROKEN_CF + "3,projector,ViewSonic Pro8200\n", ":5: field 'product_description'"),
        ("crowdflower", BROKEN_CF.replace(",4,0", ",9,0"), ":4: field 'median_relevance'"),
        ("crowdflower", BROKEN_CF.replace(',"median_relevance"', ""), ":1: field 'median_relevance'"),
        (
            "kuaisearch",
            '{"query": "q", "item_title": "t", "score": 1}\n{"query": "q", "item_title": "t", "score": 1\n',
            ":2: invalid JSON",
        ),
        (
            "kuaisearch",
            '{"query": "q", "item_title": "t", "score": 1}\n\n{"query": "q", "score": 1}\n',
            ":3: field 'item_title'",
        ),
    ],
)
def test_import_errors_leave_no_output(tmp_path, source, content, where):
    raw = tmp_path / "raw" / ("in.csv.gz" if source == "crowdflower" else "in.jsonl.gz")
    raw.parent.mkdir()
    raw.write_bytes(gzip.compress(content.encode()))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = cli_subprocess("data", "import", "--source", source, "--input", raw, "--out", out_dir / "x.jsonl")
    assert result.returncode != 0
    assert f"{raw}{where}" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_in(out_dir) == []  # not even a partial file or a temporary


def test_failed_import_keeps_an_existing_output_untouched(tmp_path):
    out = tmp_path / "x.jsonl"
    out.write_text("old\n")
    raw = tmp_path / "in.csv"
    raw.write_text(BROKEN_CF.replace(",4,0", ",9,0"))
    result = cli("data", "import", "--source", "crowdflower", "--input", raw, "--out", out)
    assert result.exit_code == 2
    assert out.read_text() == "old\n" and files_in(tmp_path) == ["in.csv", "x.jsonl"]


def test_validate_and_split_errors(tmp_path):
    good = dumps(Record(id="a", query="q", item=Item(title="t"), label="E", scheme="esci"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good + "\n" + good.replace('"a"', '"b"').replace('"E"', '"4"') + "\n")
    result = cli_subprocess("data", "validate", bad)
    assert result.returncode == 2 and f"{bad}:2: field 'label'" in result.stderr

    result = cli_subprocess("data", "split", bad.with_name("missing.jsonl"), "--out-dir", tmp_path / "s")
    assert result.returncode != 0 and "missing.jsonl" in result.stderr

    truncated = tmp_path / "trunc.jsonl"
    truncated.write_text(good + "\n" + good[:20] + "\n")
    result = cli_subprocess("data", "split", truncated, "--out-dir", tmp_path / "s")
    assert result.returncode == 2 and f"{truncated}:2:" in result.stderr
    assert not (tmp_path / "s").exists()

    result = cli("data", "split", bad, "--out-dir", tmp_path / "s", "--ratios", "1,1", "--names", "a,b,c")
    assert result.exit_code != 0 and not (tmp_path / "s").exists()


def test_unknown_source_and_scheme(tmp_path):
    result = cli_subprocess(
        "data", "import", "--source", "nope", "--input", esci_sample_path(), "--out", tmp_path / "x.jsonl"
    )
    assert result.returncode == 2 and "unknown importer 'nope'" in result.stderr and "esci" in result.stderr
    result = cli_subprocess(
        "data",
        "import",
        "--source",
        "esci",
        "--input",
        esci_sample_path(),
        "--out",
        tmp_path / "x.jsonl",
        "--scheme",
        "nope",
    )
    assert result.returncode == 2 and "unknown label scheme 'nope'" in result.stderr
    assert files_in(tmp_path) == []
