"""`taosr1 eval`: metrics per stage and tag slice, and an HTML report whose plots and tables are really there."""

from __future__ import annotations

import base64
import json
import random
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from taosr1_plugins.cli import app
from taosr1_plugins.deploy.cumpt import argmax_tier, expected_score
from taosr1_plugins.errors import DataError
from taosr1_plugins.evaluation.metrics import compute_metrics, compute_slices
from taosr1_plugins.evaluation.report import expected_calibration_error, reliability_bins, write_report
from taosr1_plugins.core.schemes import get_scheme

TAOSR1 = get_scheme("taosr1")
TAGS = [[], ["negation"], ["qa", "knowledge"], ["alternative"], []]


def write_stage(path, sharpness, seed):
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(60):
            gold = rng.randrange(4)
            w = [rng.random() for _ in range(4)]
            w[gold] += sharpness * rng.random()
            p = [x / sum(w) for x in w]
            fh.write(json.dumps({"id": f"r{i}", "scheme": "taosr1", "probs": dict(zip(TAOSR1.keys, p)),
                                 "label": TAOSR1.keys[argmax_tier(p)], "score": expected_score(p),
                                 "gold": TAOSR1.keys[gold], "tags": TAGS[i % len(TAGS)]}) + "\n")
    return path


class ReportParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.plots: dict[str, list[str]] = {}
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and "data-plot" in attrs:
            self.plots.setdefault(attrs["data-plot"], []).append(attrs["src"])
        elif tag == "table":
            self.tables.append({"class": attrs.get("class"), "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self.tables[-1]["rows"].append(self._row)


def parse(path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text())
    return parser


def test_report_has_plots_and_tables_with_sklearn_metrics(tmp_path):
    sft = write_stage(tmp_path / "sft.jsonl", 0.5, 1)
    grpo = write_stage(tmp_path / "grpo.jsonl", 3.0, 2)
    cumpt = tmp_path / "cumpt.json"
    cumpt.write_text(json.dumps({"scheme": "taosr1", "levels": TAOSR1.keys, "thresholds": {"4": 0.4, "3": 0.6, "2": 0.8}}))
    report = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["eval", "--scores", str(sft), "--scores", str(grpo), "--cumpt", str(cumpt),
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    html = parse(report)
    assert set(html.plots) == {"confusion", "reliability", "tiers", "f1_per_stage", "tradeoff"}
    assert len(html.plots["confusion"]) == 2 and len(html.plots["tiers"]) == 2  # one per stage
    for sources in html.plots.values():
        for src in sources:
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    classes = [t["class"] for t in html.tables]
    assert classes.count("headline") == 1 and classes.count("stability") == 1
    assert classes.count("per-level") == classes.count("confusion") == classes.count("slices") == 2

    # the headline row for the second stage holds sklearn's macro-F1 of its CumPT tiers
    rows = [json.loads(line) for line in grpo.read_text().splitlines()]
    probs = [[r["probs"][k] for k in TAOSR1.keys] for r in rows]
    from taosr1_plugins.deploy.cumpt import CumPT

    tiers = [CumPT(TAOSR1.keys, [0.4, 0.6, 0.8]).tier(p) for p in probs]
    expected = compute_metrics([r["gold"] for r in rows], tiers, TAOSR1)
    headline = html.tables[classes.index("headline")]["rows"]
    assert headline[0][:4] == ["stage", "n", "decision", "macro-F1"]
    assert headline[2][0] == "grpo.jsonl" and headline[2][2] == "cumpt"
    assert float(headline[2][3]) == pytest.approx(expected.macro_f1, abs=5e-4)
    confusion = html.tables[[i for i, c in enumerate(classes) if c == "confusion"][1]]["rows"]
    assert [[int(x) for x in row[1:]] for row in confusion[1:]] == expected.confusion
    slices = html.tables[[i for i, c in enumerate(classes) if c == "slices"][1]]["rows"]
    assert {row[0] for row in slices[1:]} == {"negation", "alternative", "qa", "knowledge"}
    assert "rule-derived" in report.read_text()


def test_single_stage_without_cumpt_uses_argmax_and_has_no_stage_plot(tmp_path):
    scores = write_stage(tmp_path / "scores.jsonl", 1.0, 3)
    stages = write_report([scores], tmp_path / "r.html")
    assert stages[0].decision == "argmax"
    assert set(parse(tmp_path / "r.html").plots) == {"confusion", "reliability", "tiers", "tradeoff"}


def test_slices_and_calibration_helpers():
    gold, pred = ["4", "3", "4", "1"], ["4", "4", "4", "1"]
    tags = [["negation"], ["negation", "qa"], [], ["qa"]]
    slices = compute_slices(gold, pred, tags, TAOSR1, ["negation", "qa", "knowledge"])
    assert set(slices) == {"negation", "qa"}  # no pair is tagged knowledge
    assert slices["negation"].n == 2 and slices["negation"].accuracy == 0.5
    assert slices["qa"].accuracy == 0.5
    bins = reliability_bins([0.95, 0.95, 0.55, 1.0], [True, False, True, True])
    assert bins == [(0.55, 1.0, 1), (pytest.approx((0.95 * 2 + 1.0) / 3), pytest.approx(2 / 3), 3)]
    assert expected_calibration_error([0.9, 0.9], [True, True]) == pytest.approx(0.1)


def test_mixed_schemes_are_refused(tmp_path):
    a = write_stage(tmp_path / "a.jsonl", 1.0, 4)
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({"id": "x", "scheme": "esci", "probs": {"E": 0.7, "S": 0.1, "C": 0.1, "I": 0.1},
                             "label": "E", "score": 0.8, "gold": "E"}) + "\n")
    with pytest.raises(DataError, match="scheme"):
        write_report([a, b], tmp_path / "r.html")
