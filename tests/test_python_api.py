"""The Python API: `RelevanceScorer.predict` gives the numbers `taosr1 score` writes for the same pairs (the CLI run
as a user runs it, in its own process), tiers follow a fitted cumpt.json, the scheme comes from the model folder,
and `import taosr1_plugins` stays free of torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from taosr1_plugins import RelevanceScorer
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.core.model_scheme import write_model_scheme
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.calibration import fit_cumpt, load_cumpt, write_cumpt
from taosr1_plugins.deploy.scoring import read_scores
from taosr1_plugins.errors import DataError, UserError

REPO = Path(__file__).resolve().parents[1]
ESCI = get_scheme("esci")


def taosr1(*args) -> None:
    result = subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", *map(str, args)], capture_output=True,
                            text=True, cwd=REPO, env=os.environ, timeout=600)
    assert result.returncode == 0, result.stderr


def as_pairs(records) -> list[tuple[str, dict]]:
    return [(record.query, record.item.model_dump(exclude_defaults=True)) for record in records]


@pytest.fixture(scope="module")
def pairs(esci_records):
    # prompts of different lengths, so batches are padded; more pairs than one batch of 8
    return sorted(esci_records[:60], key=lambda r: len(r.item.description or ""))[::6][:10]


@pytest.fixture(scope="module")
def cli(pairs, tmp_path_factory):
    """`taosr1 score` on the pairs, by the built-in name `tiny`; then a cumpt.json fitted on those scores
    (temperature and thresholds, as `taosr1 calibrate` fits them) and `taosr1 score --cumpt` with it."""
    folder = tmp_path_factory.mktemp("api")
    data = folder / "records.jsonl"
    write_jsonl(data, pairs)
    common = ["--data", data, "--device", "cpu", "--no-progress"]
    taosr1("score", "--model", "tiny", *common, "--out", folder / "scores.jsonl")
    cumpt = write_cumpt(fit_cumpt(folder / "scores.jsonl", calibration="temperature"), folder / "cumpt.json")
    taosr1("score", "--model", "tiny", "--cumpt", cumpt, *common, "--out", folder / "scores_cumpt.jsonl")
    return {"scores": read_scores(folder / "scores.jsonl").rows, "cumpt": cumpt,
            "scores_cumpt": read_scores(folder / "scores_cumpt.jsonl").rows}


@pytest.fixture(scope="module")
def scorer(tiny_model_dir):
    return RelevanceScorer(tiny_model_dir, scheme="esci", device="cpu")


def test_predict_gives_the_numbers_of_taosr1_score(scorer, pairs, cli):
    predictions = scorer.predict(as_pairs(pairs))
    assert len(predictions) == len(cli["scores"]) == len(pairs)
    for prediction, row in zip(predictions, cli["scores"]):
        assert prediction.probs == row.probs and list(prediction.probs) == ESCI.keys
        assert (prediction.label, prediction.tier, prediction.score) == (row.label, row.tier, row.score)
        assert prediction.margin is None and row.margin is None  # no thresholds, no margin


def test_predict_with_a_cumpt_gives_the_cli_tiers_and_they_follow_cumpt(tiny_model_dir, pairs, cli):
    scorer = RelevanceScorer(tiny_model_dir, cumpt=cli["cumpt"], device="cpu")  # the scheme from the cumpt.json
    assert scorer.scheme.name == "esci"
    partition = load_cumpt(cli["cumpt"]).to_cumpt()
    assert partition.calibration is not None  # the temperature is applied before the thresholds
    predictions = scorer.predict(as_pairs(pairs))
    for prediction, row in zip(predictions, cli["scores_cumpt"]):
        assert prediction.to_dict() == row.model_dump(include={"probs", "label", "tier", "score", "margin"})
        raw = [prediction.probs[key] for key in ESCI.keys]
        # the CumPT rule on the calibrated distribution decides the tier; the label stays the model's argmax.
        # Thresholds are fitted at dev pairs' own cumulative probabilities, so a pair may sit on one: its tier was
        # read from the exact probabilities, and the six decimals kept here can fall on either side.
        assert prediction.margin == pytest.approx(partition.margin(raw), abs=1e-5)
        if prediction.margin > 1e-5:
            assert prediction.tier == partition.tier(raw)
        assert prediction.label == max(prediction.probs, key=prediction.probs.get)


def test_tiers_follow_thresholds_that_differ_from_argmax(tiny_model_dir, scorer, pairs, tmp_path):
    """Thresholds at the pairs' median cumulative probabilities spread the tiers, so following CumPT and
    following the argmax label cannot be told apart by accident. Each lies halfway between two pairs: none sits
    on a threshold, where six decimals could not tell its side."""
    raw = [[p.probs[k] for k in ESCI.keys] for p in scorer.predict(as_pairs(pairs))]
    cumulative = [sorted(sum(p[: i + 1]) for p in raw) for i in range(len(ESCI.keys) - 1)]
    middle = len(raw) // 2
    thresholds = {key: (values[middle - 1] + values[middle]) / 2 for key, values in zip(ESCI.keys, cumulative)}
    path = tmp_path / "cumpt.json"
    path.write_text(json.dumps({"scheme": "esci", "levels": ESCI.keys, "thresholds": thresholds}))
    partition = load_cumpt(path).to_cumpt()
    predictions = RelevanceScorer(tiny_model_dir, cumpt=path, device="cpu").predict(as_pairs(pairs))
    assert [p.tier for p in predictions] == [partition.tier(p) for p in raw]
    assert len({p.tier for p in predictions}) > 1
    assert [p.label for p in predictions] == [ESCI.keys[max(range(4), key=p.__getitem__)] for p in raw]


def test_items_as_titles_mappings_or_records(scorer, pairs):
    from taosr1_plugins.core.records import Item

    title = pairs[0].item.title
    record = pairs[0].model_copy(update={"item": Item(title=title)})
    by_title, by_mapping, by_record = scorer.predict(
        [(record.query, title), {"query": record.query, "item": {"title": title}}, record])
    assert by_title == by_mapping == by_record
    assert scorer.predict([]) == []


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("q", {"brand": "Acme"}), "pairs[0]: field 'item.title'"),
        (("q", {"title": "t", "colour": "red"}), "pairs[0]: field 'item.colour'"),
        (("  ", "t"), "pairs[0]: field 'query'"),
        ("just a query", "pairs[0]: a pair is (query, item)"),
        ({"query": "q", "title": "t"}, "pairs[0]: unknown keys ['title']"),
    ],
)
def test_bad_pairs_are_named(scorer, pair, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        scorer.predict([pair])


def test_the_scheme_comes_from_the_model_folder(tiny_model_dir, tmp_path, cli):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with pytest.raises(UserError, match="does not say which label scheme"):
        RelevanceScorer(model)  # before any weight is loaded
    write_model_scheme(model, get_scheme("esci"))  # what the training stages write
    assert RelevanceScorer(model, device="cpu").scheme.name == "esci"
    with pytest.raises(UserError, match="schemes disagree"):
        RelevanceScorer(model, scheme="taosr1")
    bad = tmp_path / "cumpt.json"
    bad.write_text(json.dumps({"scheme": "taosr1", "levels": get_scheme("taosr1").keys,
                               "thresholds": {k: 0.5 for k in get_scheme("taosr1").keys[:-1]}}))
    with pytest.raises(UserError, match="the cumpt.json says 'taosr1'"):
        RelevanceScorer(model, cumpt=bad)


def test_importing_the_package_imports_no_torch():
    code = ("import sys, json, taosr1_plugins; light = 'torch' not in sys.modules; "
            "from taosr1_plugins import RelevanceScorer; "
            "print(json.dumps([light, 'torch' in sys.modules, 'transformers' in sys.modules, RelevanceScorer.__name__]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, False, False, "RelevanceScorer"]
