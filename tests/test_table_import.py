"""The generic table importer (csv, tsv, jsonl, parquet with a column map and a label map) and YAML schemes
that travel with the records, on a shop-style file written here: the first hour of a new user.

Every command that must find the scheme runs in its own process (`python -m taosr1_plugins.cli`), so what
the import left in memory cannot stand in for what the records carry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from taosr1_plugins.core.jsonl import read_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import SchemeError, get_scheme, load_scheme_file
from taosr1_plugins.data.columns import ImportOptions, ImportOptionsError, parse_pairs
from taosr1_plugins.data.importing import import_records
from taosr1_plugins.errors import DataError
from shop_helpers import SHOP_SCHEME

COLUMNS = ["query_id", "query", "product_title", "description", "label"]
ROWS = [
    ["q1-a", "red running shoes", "Red running shoe, mesh", "<p>Light <b>mesh</b> upper</p>", "3"],
    ["q1-b", "red running shoes", "Blue running shoe", "", "2"],
    ["q1-c", "red running shoes", "Shoe laces, red", "Fits any shoe; 120 cm", "1"],
    ["q2-a", "usb-c cable 2m", "USB-C to USB-C cable, 2 m", "Charges and syncs", "3"],
    ["q2-b", "usb-c cable 2m", "Garden hose 20 m", "", "0"],
    ["q3-a", "espresso cups without handle", "Espresso cups, set of 4; no handle", "Porcelain", "3"],
]
SHOP_MAP = "id=query_id,query=query,title=product_title,description=description,label=label"


def shop_csv(path: Path, delimiter: str = ",", columns=COLUMNS, rows=ROWS) -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def taosr1(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, check=False)


@pytest.fixture()
def shop(tmp_path) -> Path:
    """A folder with shop.csv, shop_semicolon.csv and shop_scheme.yaml."""
    shop_csv(tmp_path / "shop.csv")
    shop_csv(tmp_path / "shop_semicolon.csv", ";")
    (tmp_path / "shop_scheme.yaml").write_text(SHOP_SCHEME, encoding="utf-8")
    return tmp_path


def test_shop_csv_imports_and_validates_with_its_yaml_scheme(shop):
    result = taosr1("data", "import", "--source", "csv", "--input", "shop.csv", "--out", "shop.jsonl",
                    "--scheme", "shop_scheme.yaml", "--map", SHOP_MAP, cwd=shop)
    assert result.returncode == 0, result.stderr
    assert "wrote 6 records to shop.jsonl" in result.stdout
    records = read_jsonl(shop / "shop.jsonl", Record)
    assert [r.id for r in records] == [row[0] for row in ROWS]
    assert Counter(r.label for r in records) == {"3": 3, "2": 1, "1": 1, "0": 1}
    # the records carry the scheme's file, absolute, so it is found from any folder
    assert {(r.scheme, r.scheme_file, r.source) for r in records} == {("shop", str(shop / "shop_scheme.yaml"), "csv")}
    first = records[0]
    assert first.item.title == "Red running shoe, mesh"
    assert first.item.description == "Light mesh upper"  # HTML stripped
    assert records[1].item.description is None
    assert "negation" in records[5].tags

    # a fresh process, from another folder, without --scheme
    elsewhere = shop / "elsewhere"
    elsewhere.mkdir()
    result = taosr1("data", "validate", shop / "shop.jsonl", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert [line.strip() for line in result.stdout.splitlines()] == [
        f"{shop / 'shop.jsonl'}: 6 valid records", "shop 3: 3", "shop 2: 1", "shop 1: 1", "shop 0: 1"
    ]


def test_semicolon_file_with_delimiter_gives_the_same_records(shop):
    for name in ("shop.csv", "shop_semicolon.csv"):
        extra = ["--delimiter", ";"] if "semicolon" in name else []
        result = taosr1("data", "import", "--source", "csv", "--input", name, "--out", name + ".jsonl",
                        "--scheme", "shop_scheme.yaml", "--map", SHOP_MAP, *extra, cwd=shop)
        assert result.returncode == 0, result.stderr
    assert (shop / "shop.csv.jsonl").read_bytes() == (shop / "shop_semicolon.csv.jsonl").read_bytes()

    # without --delimiter the header is one column: every mapped column is missing, and the error says why
    result = taosr1("data", "import", "--source", "csv", "--input", "shop_semicolon.csv", "--out", "x.jsonl",
                    "--scheme", "shop_scheme.yaml", "--map", SHOP_MAP, cwd=shop)
    assert result.returncode == 2 and "is the delimiter ';'?" in result.stderr
    assert not (shop / "x.jsonl").exists()


def test_every_missing_column_is_reported_at_once(shop):
    columns = ["query_id", "search", "product_title", "grade"]  # no query, description or label
    shop_csv(shop / "other.csv", columns=columns, rows=[[r[0], r[1], r[2], r[4]] for r in ROWS])
    result = taosr1("data", "import", "--source", "csv", "--input", "other.csv", "--out", "out/other.jsonl",
                    "--scheme", "shop_scheme.yaml", "--map", SHOP_MAP, cwd=shop)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0] == (
        "error: other.csv:1: missing columns 'query', 'description', 'label'; expected query_id, query, "
        "product_title, description, label; the file has query_id, search, product_title, grade"
    )
    assert not (shop / "out").exists()  # before any work: not even the output folder

    # the same file, mapped right, imports
    result = taosr1("data", "import", "--source", "csv", "--input", "other.csv", "--out", "other.jsonl",
                    "--scheme", "shop_scheme.yaml", "--map", "id=query_id,query=search,title=product_title,label=grade",
                    cwd=shop)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(shop / "other.jsonl", Record)) == 6


def test_label_map_onto_a_registered_scheme(shop):
    result = taosr1("data", "import", "--source", "csv", "--input", "shop.csv", "--out", "esci.jsonl", "--scheme",
                    "esci", "--map", "id=query_id,title=product_title", "--labels", "3=E,2=S,1=C,0=I", cwd=shop)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(shop / "esci.jsonl", Record)
    assert [r.label for r in records] == ["E", "S", "C", "E", "I", "E"]
    assert {r.scheme_file for r in records} == {None}  # a registered scheme needs no file

    # a raw label the map leaves out is refused where it is, even one that happens to be a key of the scheme
    result = taosr1("data", "import", "--source", "csv", "--input", "shop.csv", "--out", "x.jsonl", "--scheme",
                    "shop_scheme.yaml", "--map", "id=query_id,title=product_title", "--labels", "3=3,2=2,1=1", cwd=shop)
    assert result.returncode == 2
    assert "shop.csv:6: field 'label': unknown label: '0' is not in the label map" in result.stderr
    # a level the scheme does not have is refused before the file is read
    result = taosr1("data", "import", "--source", "csv", "--input", "missing.csv", "--out", "x.jsonl", "--scheme",
                    "esci", "--map", "title=product_title", "--labels", "3=Exact", cwd=shop)
    assert result.returncode == 2 and "'Exact' is not a level of scheme 'esci'" in result.stderr
    assert not (shop / "x.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", SHOP_MAP], "has no label scheme: name one"),  # no --scheme for a generic importer
        (["--scheme", "esci", "--map", "titel=product_title"], "unknown record field 'titel'"),
        (["--scheme", "esci", "--map", "id=query_id,title"], "expected key=value, got 'title'"),
        (["--scheme", "esci", "--map", "query="], "the column map gives no column for query"),
        (["--scheme", "esci", "--labels", "3=E,3=S"], "'3' is given twice"),
        (["--scheme", "esci", "--delimiter", ";;"], "a delimiter is one character"),
    ],
)
def test_bad_options_are_usage_errors(shop, args, message):
    result = taosr1("data", "import", "--source", "csv", "--input", "shop.csv", "--out", "x.jsonl", *args, cwd=shop)
    assert result.returncode == 2 and message in " ".join(result.stderr.split()), result.stderr
    assert not (shop / "x.jsonl").exists()


def test_duplicate_ids_are_refused_at_import_with_the_remedy(shop):
    rows = [["q1", *row[1:]] for row in ROWS]  # a query id per query, not per pair
    shop_csv(shop / "dup.csv", rows=rows)
    with pytest.raises(DataError) as caught:
        list(import_records("csv", shop / "dup.csv", shop / "shop_scheme.yaml",
                            options=ImportOptions(map=parse_pairs(SHOP_MAP))))
    assert (caught.value.line, caught.value.field) == (3, "query_id")
    assert "first on line 2" in caught.value.message and "map none" in caught.value.message
    # no id column: rows are numbered by file name and line
    no_ids = import_records("csv", shop / "dup.csv", shop / "shop_scheme.yaml",
                            options=ImportOptions(map={"id": "", "title": "product_title"}))
    assert [r.id for r in no_ids] == [f"dup-{line}" for line in range(2, 8)]


def test_tsv_jsonl_and_parquet_read_the_same_table(shop):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    scheme = shop / "shop_scheme.yaml"
    options = ImportOptions(map=parse_pairs(SHOP_MAP))
    expected = list(import_records("csv", shop / "shop.csv", scheme, options=options))

    shop_csv(shop / "shop.tsv", "\t")
    with open(shop / "shop.jsonl.raw", "w", encoding="utf-8") as fh:
        for row in ROWS:
            fh.write(json.dumps(dict(zip(COLUMNS, row))) + "\n")
    # Parquet keeps numbers as numbers: integer grades, and a description missing as null
    table = {name: [row[i] or None for row in ROWS] for i, name in enumerate(COLUMNS)}
    table["label"] = [int(row[4]) for row in ROWS]
    pq.write_table(pa.table(table), shop / "shop.parquet")

    for source, name in (("tsv", "shop.tsv"), ("jsonl", "shop.jsonl.raw"), ("parquet", "shop.parquet")):
        records = list(import_records(source, shop / name, scheme, options=options))
        assert [r.model_dump(exclude={"source"}) for r in records] == [
            r.model_dump(exclude={"source"}) for r in expected
        ], source
    with pytest.raises(ImportOptionsError, match="a delimiter is for csv and tsv files"):
        import_records("parquet", shop / "shop.parquet", scheme, options=ImportOptions(delimiter=";"))
    bad = dict(table, label=[True] * len(ROWS))
    pq.write_table(pa.table(bad), shop / "bad.parquet")
    with pytest.raises(DataError) as caught:
        list(import_records("parquet", shop / "bad.parquet", scheme, options=options))
    assert (caught.value.line, caught.value.field) == (1, "label") and "boolean" in caught.value.message


def test_presets_take_the_generic_options(tmp_path):
    """crowdflower is a preset of the csv importer: a ';' copy of its file imports with --delimiter."""
    header = "id;query;product_title;product_description;median_relevance;relevance_variance\n"
    (tmp_path / "cf.csv").write_text(header + "7;led lights;LED string, 10 m;<li>warm white</li>;4;0\n")
    (record,) = import_records("crowdflower", tmp_path / "cf.csv", options=ImportOptions(delimiter=";"))
    assert (record.id, record.label, record.scheme, record.item.description) == ("crowdflower-7", "4", "crowdflower",
                                                                                 "warm white")
    with pytest.raises(ImportOptionsError, match="delimiter"):
        import_records("kuaisearch", tmp_path / "cf.csv", options=ImportOptions(delimiter=";"))


def test_the_scheme_travels_through_split_cot_export_and_calibrate(shop):
    assert taosr1("data", "import", "--source", "csv", "--input", "shop.csv", "--out", "shop.jsonl", "--scheme",
                  "shop_scheme.yaml", "--map", SHOP_MAP, cwd=shop).returncode == 0
    result = taosr1("data", "split", "shop.jsonl", "--out-dir", "splits", "--ratios", "2,1", "--names", "train,test",
                    cwd=shop)
    assert result.returncode == 0, result.stderr
    result = taosr1("cot", "generate", "--data", "splits/train.jsonl", "--out", "splits/train_cot.jsonl", cwd=shop)
    assert result.returncode == 0, result.stderr
    cot = read_jsonl(shop / "splits" / "train_cot.jsonl", Record)
    assert cot and all(r.cot and r.scheme_file == str(shop / "shop_scheme.yaml") for r in cot)
    result = taosr1("export", "llamafactory", "--data", "splits/train_cot.jsonl", "--out-dir", "lf", cwd=shop)
    assert result.returncode == 0, result.stderr

    # score rows name the file too: calibrate reads them in a process that never saw the records
    scheme = load_scheme_file(shop / "shop_scheme.yaml")
    with open(shop / "scores.jsonl", "w", encoding="utf-8") as fh:
        for i, gold in enumerate("3210" * 3):
            probs = {key: (0.7 if key == gold else 0.1) for key in scheme.keys}
            fh.write(json.dumps({"id": f"r{i}", "scheme": "shop", "scheme_file": scheme.file, "probs": probs,
                                 "label": gold, "score": 0.5, "gold": gold}) + "\n")
    result = taosr1("calibrate", "--scores", "scores.jsonl", "--out", "cumpt.json", cwd=shop)
    assert result.returncode == 0, result.stderr
    assert json.loads((shop / "cumpt.json").read_text())["scheme_file"] == scheme.file

    # the scheme file moved away: the error names it and where its path came from
    shutil.move(shop / "shop_scheme.yaml", shop / "moved.yaml")
    result = taosr1("data", "validate", "splits/test.jsonl", cwd=shop)
    assert result.returncode == 2
    assert "splits/test.jsonl:1: field 'scheme': scheme 'shop' of these records is read from" in result.stderr
    assert str(shop / "shop_scheme.yaml") in result.stderr
    assert taosr1("data", "validate", "splits/test.jsonl", "--scheme", "moved.yaml", cwd=shop).returncode == 0


def test_the_main_job_imports_with_a_scheme_file_beside_its_config(shop):
    config_dir = shop / "configs"
    config_dir.mkdir()
    (config_dir / "shop.yaml").write_text(
        "run_dir: runs/shop\n"
        "data:\n  source: csv\n  input: ../shop_semicolon.csv\n  scheme: ../shop_scheme.yaml\n  delimiter: ';'\n"
        "  map: {id: query_id, title: product_title}\n  labels: {'3': '3', '2': '2', '1': '1', '0': '0'}\n"
        "split: {ratios: [0.5, 0.25, 0.25]}\n",
        encoding="utf-8",
    )
    result = taosr1("run", "configs/shop.yaml", "--until", "cot", cwd=shop)
    assert result.returncode == 0, result.stderr + result.stdout
    records = read_jsonl(shop / "runs" / "shop" / "cot" / "train.jsonl", Record)
    assert records and {r.scheme_file for r in records} == {str(shop / "shop_scheme.yaml")}

    # the scheme file is an input of the import: unchanged, nothing reruns; edited, the import does
    result = taosr1("run", "configs/shop.yaml", "--until", "import", cwd=shop)
    assert "✓ import 1/1 unchanged, skipped" in result.stdout
    (shop / "shop_scheme.yaml").write_text(SHOP_SCHEME.replace("Unrelated", "Nothing to do with"), encoding="utf-8")
    result = taosr1("run", "configs/shop.yaml", "--until", "import", cwd=shop)
    assert result.returncode == 0 and "skipped" not in result.stdout, result.stdout


def test_get_scheme_is_one_lookup(tmp_path):
    path = tmp_path / "shop_scheme.yaml"
    path.write_text(SHOP_SCHEME, encoding="utf-8")
    scheme = get_scheme(str(path))
    assert scheme.file == str(path) and get_scheme("esci").file is None
    assert get_scheme("shop", path) == scheme
    assert get_scheme("shop") == scheme  # read from a file in this process: score rows naming it resolve
    with pytest.raises(SchemeError, match="defines scheme 'shop', but the records name 'other'"):
        get_scheme("other", path)
    with pytest.raises(SchemeError, match="restore the file"):
        get_scheme("shop", tmp_path / "gone.yaml")
