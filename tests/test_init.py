"""`taosr1 init` and configs outside the checkout: recipe paths such as ../recipes/... name the package's copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hostile_helpers import run_main
from taosr1_plugins.core.jsonl import read_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.pipeline.config import DEFAULT_RECIPES, load_config
from taosr1_plugins.shipped import SHIPPED, shipped_dir, shipped_path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "taosr1_plugins" / "data" / "esci_sample" / "esci_200_with_titles.csv.gz"


def test_the_checkout_is_the_package_copy_of_an_editable_install():
    for name in SHIPPED:
        assert shipped_dir(name) == REPO / name
    assert shipped_path("../recipes/trl/sft_cot_smollm2.yaml") == REPO / "recipes/trl/sft_cot_smollm2.yaml"
    assert shipped_path("../../recipes/trl/sft_cot_smollm2.yaml") == REPO / "recipes/trl/sft_cot_smollm2.yaml"
    assert shipped_path("recipes/trl/no_such.yaml") is None
    assert shipped_path("../data/recipes.yaml") is None and shipped_path("recipes") is None


def test_a_config_elsewhere_reads_the_package_recipes_and_its_own_files_first(tmp_path):
    config_file = tmp_path / "exp" / "run.yaml"
    config_file.parent.mkdir()
    config_file.write_text(yaml.safe_dump({
        "sft": {"framework": "trl"},  # its default recipe: ../recipes/trl/sft_cot_smollm2.yaml
        "dpo": {"recipe": "../recipes/trl/dpo_smollm2.yaml", "framework": "trl"},
        "grpo": {"recipe": "../recipes/trl/grpo_custom.yaml"},
        "data": {"input": "../data/mine.csv"},
    }))
    own = tmp_path / "recipes" / "trl" / "dpo_smollm2.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("learning_rate: 1.0e-6\n")
    config = load_config(config_file)

    assert config.resolve(config.sft.recipe) == REPO / DEFAULT_RECIPES["sft", "trl"][3:]
    assert config.resolve(config.dpo.recipe) == own  # the user's own copy beside the config wins
    # neither beside the config nor shipped: the path the config meant, for the error to name
    assert config.resolve(config.grpo.recipe) == tmp_path / "recipes" / "trl" / "grpo_custom.yaml"
    assert config.resolve(config.data.input) == tmp_path / "data" / "mine.csv"  # only shipped folders fall back


def test_init_writes_the_quickstart_on_the_users_data(tmp_path, monkeypatch, capsys):
    data = tmp_path / "project" / "data" / "judgements.csv.gz"
    data.parent.mkdir(parents=True)
    data.write_bytes(SAMPLE.read_bytes())
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, monkeypatch, "init", "project", "--data", "project/data/judgements.csv.gz",
                         "--scheme", "esci")
    assert code == 0, err
    config_file = tmp_path / "project" / "taosr1.yaml"
    config = load_config(config_file)
    quickstart = load_config(REPO / "configs" / "quickstart.yaml")

    assert (config.data.source, config.data.input, config.data.scheme) == ("esci", "data/judgements.csv.gz", "esci")
    assert config.resolve(config.data.input) == data.resolve()  # inside the config's folder: relative to it
    assert config.run_dir == "runs/project"
    # everything else is the quickstart's, comments included
    skip = {"data", "run_dir"}
    assert config.model_dump(exclude=skip) == quickstart.model_dump(exclude=skip)
    assert "# importer plugin" in config_file.read_text() and "# train / dev / test" in config_file.read_text()
    for section in ("sft", "dpo", "grpo"):
        assert config.resolve(getattr(config, section).recipe).is_file()

    # it runs from another folder: the preflight of `taosr1 run` passes there
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, err = run_main(capsys, monkeypatch, "run", config_file, "--check", "--until", "split")
    assert code == 0, err
    assert not (elsewhere / "runs").exists()  # a check writes nothing


def test_init_without_data_uses_the_sample_and_data_outside_is_absolute(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_main(capsys, monkeypatch, "init", "a")[0] == 0
    assert load_config(tmp_path / "a" / "taosr1.yaml").data.input is None
    assert run_main(capsys, monkeypatch, "init", "b", "--data", SAMPLE)[0] == 0
    assert load_config(tmp_path / "b" / "taosr1.yaml").data.input == str(SAMPLE)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", SAMPLE, "--source", "crowdflower"], "missing columns 'id', 'median_relevance'"),
        (["--data", SAMPLE, "--scheme", "taosr1"], "(read as --source esci --scheme taosr1)"),
        (["--source", "crowdflower"], "--source crowdflower needs --data"),
        (["--data", SAMPLE, "--source", "nosuch"], "unknown importer 'nosuch'"),
        (["--map", "title=product_title"], "--map, --labels and --delimiter describe your file: they need --data"),
        (["--data", SAMPLE, "--map", "titel=x"], "unknown record field 'titel'"),
    ],
)
def test_init_refuses_a_source_or_scheme_that_does_not_read_the_file(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, monkeypatch, "init", "exp", *args)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "exp").exists()


def test_init_takes_the_column_map_label_map_and_delimiter_of_data_import(tmp_path, monkeypatch, capsys):
    """A shop's own file, columns not named like the fields, ';'-separated: init reads it as `data import` does
    and the run config carries the same map, so `taosr1 run` imports it as that command did."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop.csv").write_text("query_id;search;product_title;grade\nq1;red shoes;Red shoe;3\n"
                                       "q2;red shoes;Blue shoe;1\n", encoding="utf-8")
    flags = ["--data", "shop.csv", "--source", "csv", "--scheme", "esci", "--labels", "3=E,2=S,1=C,0=I",
             "--map", "id=query_id,query=search,title=product_title,label=grade"]
    code, err = run_main(capsys, monkeypatch, "init", "exp", *flags)
    assert code == 2 and "is the delimiter ';'?" in err  # without the delimiter the header is one column
    assert not (tmp_path / "exp").exists()
    code, err = run_main(capsys, monkeypatch, "init", "exp", *flags, "--delimiter", ";")
    assert code == 0, err
    config = load_config(tmp_path / "exp" / "taosr1.yaml")
    assert config.data.map == {"id": "query_id", "query": "search", "title": "product_title", "label": "grade"}
    assert (config.data.labels, config.data.delimiter) == ({"3": "E", "2": "S", "1": "C", "0": "I"}, ";")

    code, err = run_main(capsys, monkeypatch, "run", tmp_path / "exp" / "taosr1.yaml", "--until", "import")
    assert code == 0, err
    records = read_jsonl(tmp_path / "runs" / "exp" / "data" / "all.jsonl", Record)
    assert [(r.id, r.query, r.item.title, r.label) for r in records] == [
        ("q1", "red shoes", "Red shoe", "E"), ("q2", "red shoes", "Blue shoe", "C")]


def test_init_keeps_an_existing_config_unless_forced(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "taosr1.yaml").write_text("seed: 7\n")
    code, err = run_main(capsys, monkeypatch, "init", "exp")
    assert code == 2 and "exists (use --force" in err
    assert (tmp_path / "exp" / "taosr1.yaml").read_text() == "seed: 7\n"
    assert run_main(capsys, monkeypatch, "init", "exp", "--force")[0] == 0
    assert load_config(tmp_path / "exp" / "taosr1.yaml").seed == 0
