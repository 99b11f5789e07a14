"""Built-in importers on the real files in ../shared/data, and on broken files.

Counts below are measured on the development files here. The dataset READMEs' label distributions for
crowdflower and home_depot describe the full Kaggle train sets (10,158 and 74,067 rows), before a fifth
of the queries was held back, so they are not what these files hold.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from taosr1_plugins.data.importers import (
    BUILTIN_IMPORTERS,
    import_crowdflower,
    import_esci,
    import_home_depot,
    import_kuaisearch,
)
from taosr1_plugins.builtin.schemes import CROWDFLOWER, ESCI, HOME_DEPOT, KUAISEARCH, TAOSR1
from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.errors import DataError
from taosr1_plugins.data.html_text import html_to_text
from taosr1_plugins.core.schemes import LabelScheme, Level

HTML_TAG = re.compile(r"<(/?[a-zA-Z][a-zA-Z0-9]*)(\s[^<>]*)?/?>")


def labels(records) -> Counter:
    return Counter(record.label for record in records)


def test_importers_declare_their_schemes():
    assert {run.importer_name: run.default_scheme for run in BUILTIN_IMPORTERS} == {
        "crowdflower": "crowdflower",
        "home_depot": "home_depot",
        "esci": "esci",
        "kuaisearch": "kuaisearch",
    }


# --- the real files -------------------------------------------------------------------------------


def test_crowdflower_dev(shared_data: Path):
    records = list(import_crowdflower(shared_data / "crowdflower" / "dev.csv.gz", CROWDFLOWER))
    assert len(records) == 8289
    assert len({r.query for r in records}) == 215
    assert labels(records) == {"4": 4997, "3": 1451, "2": 1188, "1": 653}
    assert len({r.id for r in records}) == len(records)
    assert all(
        r.source == "crowdflower" and r.scheme == "crowdflower" and r.id.startswith("crowdflower-") for r in records
    )
    # 2,027 rows have an empty description; the rest keep their text, with the HTML stripped
    described = [r for r in records if r.item.description]
    assert len(described) == 8289 - 2027
    assert not any(HTML_TAG.search(r.item.description) or "&nbsp;" in r.item.description for r in described)


def test_home_depot_dev_buckets(shared_data: Path):
    records = list(import_home_depot(shared_data / "home_depot" / "dev.csv.gz", HOME_DEPOT))
    assert len(records) == 59379
    assert len({r.query for r in records}) == 9449
    # mean ratings bucketed <=1.67 -> 1, 1.75..2.33 -> 2, >=2.5 -> 3 (the README's buckets; its counts
    # 11,900 / 27,810 / 34,357 are of the full 74,067-row set)
    assert labels(records) == {"1": 9517, "2": 22397, "3": 27465}
    assert all(r.item.title and r.source == "home_depot" for r in records)


def test_home_depot_bucket_edges():
    for raw, key in [
        ("1", "1"),
        ("1.33", "1"),
        ("1.67", "1"),
        ("1.75", "2"),
        ("2", "2"),
        ("2.33", "2"),
        ("2.5", "3"),
        ("3", "3"),
    ]:
        assert HOME_DEPOT.to_key(raw) == key, raw


def test_esci_sample(shared_data: Path):
    records = list(import_esci(shared_data / "esci_sample" / "esci_200_with_titles.csv.gz", ESCI))
    assert len(records) == 200
    assert len({r.query for r in records}) == 200
    assert labels(records) == {"E": 138, "S": 49, "I": 12, "C": 1}
    assert all(r.item.brand and r.item.color and r.item.description for r in records)
    assert not any(HTML_TAG.search(r.item.description) for r in records)
    first = records[0]
    assert first.id == "esci-1288327"
    assert first.item.brand == "Mama Koala" and first.item.color == "Jagger"
    # bullet points come first in the description, one per line
    assert first.item.description.startswith("- NO LEAKS - Waterproof")
    assert "Product Details\nMama Koala cloth diaper" in first.item.description


def test_bundled_esci_sample_is_the_shared_file(shared_data: Path):
    shipped = esci_sample_path()
    assert shipped.read_bytes() == (shared_data / "esci_sample" / "esci_200_with_titles.csv.gz").read_bytes()
    folder = shipped.parent
    assert (folder / "LICENSE_ESCI_Apache-2.0").is_file()
    assert "Apache" in (folder / "README.md").read_text(encoding="utf-8")


def test_bundled_esci_sample_imports_without_shared_data():
    assert labels(import_esci(esci_sample_path(), ESCI)) == {"E": 138, "S": 49, "I": 12, "C": 1}


def test_only_the_esci_sample_is_shipped():
    data_dir = Path(__import__("taosr1_plugins").__file__).parent / "data"
    shipped = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    assert not any(name in path for path in shipped for name in ("crowdflower", "home_depot", "kuaisearch"))


def test_kuaisearch_demo(shared_data: Path):
    records = list(import_kuaisearch(shared_data / "kuaisearch_zh" / "relevance_demo.jsonl.gz", KUAISEARCH))
    assert len(records) == 200
    assert len({r.query for r in records}) == 200
    assert labels(records) == {"0": 17, "1": 40, "2": 76, "3": 67}
    first = records[0]
    assert first.id == "kuaisearch-relevance_demo-1"
    assert first.query == "芈姐家半身裙" and first.item.title == "液态棉后开衩半裙"
    assert first.item.brand == "无品牌"
    assert first.item.attributes["seller"] == "以晨服装搭配"
    assert first.item.attributes["attribute values"].startswith("无品牌,常规,直筒")


def test_tags_are_rule_derived_from_the_query(shared_data: Path):
    records = list(import_home_depot(shared_data / "home_depot" / "dev.csv.gz", HOME_DEPOT))
    tagged = Counter(tag for r in records for tag in r.tags)
    assert set(tagged) <= {"negation", "alternative", "qa", "knowledge"}
    assert tagged["negation"] > 0
    assert all("negation" in r.tags for r in records if re.search(r"\bwithout\b", r.query, re.IGNORECASE))


def test_another_scheme_maps_raw_labels_through_its_own_rules(shared_data: Path):
    # crowdflower's 1-4 are keys of the taosr1 scheme too
    records = list(import_crowdflower(shared_data / "crowdflower" / "dev.csv.gz", TAOSR1))
    assert labels(records) == {"4": 4997, "3": 1451, "2": 1188, "1": 653}
    assert {r.scheme for r in records} == {"taosr1"}
    # raw ESCI words match a scheme's lowercase raw_labels case-insensitively
    binary = LabelScheme(
        name="binary",
        levels=(Level(key="1", name="Relevant", definition="d"), Level(key="0", name="Not relevant", definition="d")),
        raw_labels={"exact": "1", "substitute": "1", "complement": "0", "irrelevant": "0"},
    )
    assert labels(import_esci(esci_sample_path(), binary)) == {"1": 187, "0": 13}


# --- broken files ---------------------------------------------------------------------------------

CF_HEADER = '"id","query","product_title","product_description","median_relevance","relevance_variance"\n'
CF_ROWS = [
    '1,bridal shower decorations,Accent Pillow,"Red satin pillow.\nTwo lines, ""quoted"".",1,0\n',  # lines 2-3
    "2,led christmas lights,Set of 10 LED Train Lights,,4,0\n",  # line 4
]


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_of(run, path, scheme) -> DataError:
    with pytest.raises(DataError) as info:
        list(run(path, scheme))
    assert info.value.file == str(path)
    return info.value


def test_good_small_csv_with_embedded_newlines(tmp_path):
    records = list(import_crowdflower(write(tmp_path / "cf.csv", CF_HEADER + "".join(CF_ROWS)), CROWDFLOWER))
    assert [r.id for r in records] == ["crowdflower-1", "crowdflower-2"]
    assert records[0].item.description == 'Red satin pillow.\nTwo lines, "quoted".'


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_truncated_csv_row(tmp_path, suffix):
    path = write(tmp_path / f"cf{suffix}", CF_HEADER + "".join(CF_ROWS) + "3,projector,ViewSonic Pro8200\n")
    err = error_of(import_crowdflower, path, CROWDFLOWER)
    assert (err.line, err.field) == (5, "product_description")
    assert "truncated" in err.message


def test_csv_cut_inside_a_quoted_field(tmp_path):
    path = write(tmp_path / "cf.csv", CF_HEADER + "".join(CF_ROWS) + '3,projector,ViewSonic,"Bright\nand clear')
    err = error_of(import_crowdflower, path, CROWDFLOWER)
    assert err.line == 5 and "malformed CSV" in err.message


def test_truncated_gzip(tmp_path, shared_data):
    whole = (shared_data / "crowdflower" / "dev.csv.gz").read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    err = error_of(import_crowdflower, path, CROWDFLOWER)
    assert err.line > 1000 and "unreadable" in err.message


def test_bad_label_is_located_after_a_multiline_row(tmp_path):
    path = write(tmp_path / "cf.csv", CF_HEADER + CF_ROWS[0] + CF_ROWS[1].replace(",4,0", ",5,0"))
    err = error_of(import_crowdflower, path, CROWDFLOWER)
    assert (err.line, err.field) == (4, "median_relevance")
    assert "'5'" in err.message


def test_bad_label_on_a_real_multiline_file(tmp_path, shared_data):
    """Break the label of the 100th ESCI row; the error names the physical line that row starts on."""
    text = gzip.decompress((shared_data / "esci_sample" / "esci_200_with_titles.csv.gz").read_bytes()).decode()
    records = list(import_esci(esci_sample_path(), ESCI))
    example_id = records[99].id.removeprefix("esci-")
    start = text.index(f"\n{example_id},") + 1
    expected_line = text.count("\n", 0, start) + 1
    assert expected_line > 100  # rows before it span several lines each
    broken = text[:start] + re.sub(r",(Exact|Substitute|Complement|Irrelevant),", ",Maybe,", text[start:], count=1)
    err = error_of(import_esci, write(tmp_path / "esci.csv.gz", broken), ESCI)
    assert (err.line, err.field) == (expected_line, "esci_label")


def test_missing_column(tmp_path):
    header = CF_HEADER.replace(',"median_relevance"', "")
    rows = [row.replace(",1,0\n", ",0\n").replace(",4,0\n", ",0\n") for row in CF_ROWS]
    err = error_of(import_crowdflower, write(tmp_path / "cf.csv", header + "".join(rows)), CROWDFLOWER)
    assert (err.line, err.field) == (1, "median_relevance")


@pytest.mark.parametrize(
    ("row", "field"), [("6,  ,Title,,4,0\n", "query"), ("7,some query,  ,,4,0\n", "product_title")]
)
def test_empty_query_or_title(tmp_path, row, field):
    err = error_of(import_crowdflower, write(tmp_path / "cf.csv", CF_HEADER + "".join(CF_ROWS) + row), CROWDFLOWER)
    assert (err.line, err.field) == (5, field)


def test_empty_file(tmp_path):
    err = error_of(import_esci, write(tmp_path / "e.csv", ""), ESCI)
    assert err.line == 1


KS_ROW = {
    "query": "情侣盒子",
    "item_title": "礼物盒",
    "brand": "无品牌",
    "seller_name": "店",
    "attr_value": "a,b",
    "score": 2,
}


def ks_file(tmp_path, lines: list[str]) -> Path:
    return write(tmp_path / "ks.jsonl", "".join(line + "\n" for line in lines))


def test_kuaisearch_invalid_json_line(tmp_path):
    good = json.dumps(KS_ROW, ensure_ascii=False)
    path = ks_file(tmp_path, [good, "", good, good[:-5]])
    err = error_of(import_kuaisearch, path, KUAISEARCH)
    assert err.line == 4 and "invalid JSON" in err.message


@pytest.mark.parametrize("field", ["query", "item_title", "score"])
def test_kuaisearch_missing_field(tmp_path, field):
    row = {k: v for k, v in KS_ROW.items() if k != field}
    path = ks_file(tmp_path, [json.dumps(KS_ROW), json.dumps(row)])
    err = error_of(import_kuaisearch, path, KUAISEARCH)
    assert (err.line, err.field) == (2, field)


@pytest.mark.parametrize(
    ("score", "ok"), [(2, True), (2.0, True), ("3", True), (4, False), (True, False), (None, False), ([1], False)]
)
def test_kuaisearch_scores(tmp_path, score, ok):
    path = ks_file(tmp_path, [json.dumps({**KS_ROW, "score": score})])
    if ok:
        assert [r.label for r in import_kuaisearch(path, KUAISEARCH)] == [str(int(float(score)))]
    else:
        assert (error_of(import_kuaisearch, path, KUAISEARCH).field) == "score"


def test_kuaisearch_line_that_is_not_an_object(tmp_path):
    err = error_of(import_kuaisearch, ks_file(tmp_path, [json.dumps(KS_ROW), "[1, 2]"]), KUAISEARCH)
    assert err.line == 2 and "object" in err.message


def test_html_to_text():
    assert html_to_text("<b>Hi</b> &amp; <br/>bye<script>x()</script><style>p{}</style>") == "Hi &\nbye"
    assert html_to_text("plain   text\n\n\nsecond") == "plain text\nsecond"
    assert html_to_text("   ") is None and html_to_text(None) is None
    assert html_to_text("3 < 5 and 6 > 2") == "3 < 5 and 6 > 2"
