"""`taosr1 export llamafactory` and our converters, checked through LLaMA-Factory's own data code."""

from __future__ import annotations

import json

import datasets
import pytest
from llamafactory_helpers import ESCI_SAMPLE, esci_records_with_cot, write_records
from typer.testing import CliRunner

from taosr1_plugins.cli import app
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.formats import ResponseFormat, parse_response, render_response
from taosr1_plugins.integrations.llamafactory.export import export_llamafactory
from taosr1_plugins.core.prompts import build_messages
from taosr1_plugins.core.schemes import get_scheme

pytestmark = pytest.mark.skipif(not ESCI_SAMPLE.is_file(), reason="shared ESCI sample not beside the checkout")


@pytest.fixture(scope="module")
def records():
    return esci_records_with_cot()


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))  # no stale cache between tests


def lf_args(dataset_dir, name, model_dir, output_dir):
    from llamafactory.hparams import get_train_args

    return get_train_args(
        {
            "model_name_or_path": str(model_dir),
            "stage": "sft",
            "do_train": True,
            "finetuning_type": "full",
            "dataset_dir": str(dataset_dir),
            "dataset": name,
            "template": "smollm2",
            "cutoff_len": 4096,
            "output_dir": str(output_dir),
            "overwrite_output_dir": True,
            "report_to": "none",
            "use_cpu": True,
        }
    )


def aligned_rows(dataset_dir, name, data_args, training_args):
    """Load one dataset the way LLaMA-Factory's loader does and run its align_dataset (our converter)."""
    from llamafactory.data.converter import align_dataset
    from llamafactory.data.parser import get_dataset_list

    from taosr1_plugins.integrations.llamafactory.plugin import register

    register()
    (attr,) = get_dataset_list([name], str(dataset_dir))
    raw = datasets.load_dataset("json", data_files=str(dataset_dir / attr.dataset_name), split="train")
    return attr, align_dataset(raw, attr, data_args, training_args)


def test_cli_export_writes_file_and_merges_dataset_info(tmp_path, records):
    data = write_records(tmp_path / "esci_cot.jsonl", records)
    out = tmp_path / "lf"
    out.mkdir()
    (out / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    runner = CliRunner()
    result = runner.invoke(app, ["export", "llamafactory", "--data", str(data), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    post = ["--name", "esci_post", "--format", "answer_first"]
    result = runner.invoke(app, ["export", "llamafactory", "--data", str(data), "--out-dir", str(out), *post])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "dataset_info.json").read_text())
    assert info == {
        "mine": {"file_name": "mine.json"},
        "esci_cot": {"file_name": "esci_cot.jsonl", "formatting": "taosr1_cot"},
        "esci_post": {"file_name": "esci_post.jsonl", "formatting": "taosr1_post_cot"},
    }
    rows = [json.loads(line) for line in (out / "esci_cot.jsonl").read_text().splitlines()]
    assert len(rows) == 200 and [r["id"] for r in rows] == [r.id for r in records]
    assert not list(out.glob(".*.tmp"))  # atomic writes left no temporaries


@pytest.mark.parametrize("fmt", list(ResponseFormat))
def test_llamafactory_align_dataset_gives_our_prompts_and_targets(tmp_path, records, tiny_model_dir, fmt):
    out = tmp_path / "lf"
    export_llamafactory(write_records(tmp_path / "esci.jsonl", records), out, name="esci", fmt=fmt)
    _, data_args, training_args, _, _ = lf_args(out, "esci", tiny_model_dir, tmp_path / "run")
    attr, aligned = aligned_rows(out, "esci", data_args, training_args)
    assert attr.formatting == {"think_answer": "taosr1_cot", "answer_first": "taosr1_post_cot"}[fmt.value]
    scheme = get_scheme("esci")
    assert len(aligned) == len(records)
    for record, row in zip(records, aligned):
        system, user = build_messages(record, scheme, fmt)
        assert row["_system"] == system["content"]
        assert row["_prompt"] == [{"role": "user", "content": user["content"]}]
        target = render_response(record.cot, record.label, scheme, fmt)
        assert row["_response"] == [{"role": "assistant", "content": target}]
        assert parse_response(target, scheme, fmt) == (record.label, record.cot, True)
    with_attributes = next(row for record, row in zip(records, aligned) if record.item.attributes)
    assert "Attributes: material: cotton; size: L" in with_attributes["_prompt"][0]["content"] or (
        "Attributes: pack: 6" in with_attributes["_prompt"][0]["content"]
    )


def test_llamafactory_get_dataset_trains_on_the_target_only(tmp_path, records, tiny_model_dir):
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.model import load_tokenizer

    from taosr1_plugins.integrations.llamafactory.plugin import register

    register()
    out = tmp_path / "lf"
    export_llamafactory(write_records(tmp_path / "esci.jsonl", records[:8]), out, name="esci")
    model_args, data_args, training_args, _, _ = lf_args(out, "esci", tiny_model_dir, tmp_path / "run")
    tokenizer = load_tokenizer(model_args)["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", tokenizer=tokenizer)
    example = module["train_dataset"][0]
    scheme = get_scheme("esci")
    text = tokenizer.decode(example["input_ids"])
    system, user = build_messages(records[0], scheme)
    target = render_response(records[0].cot, records[0].label, scheme, ResponseFormat.THINK_ANSWER)
    assert text == (
        f"<|im_start|>system\n{system['content']}<|im_end|>\n<|im_start|>user\n{user['content']}<|im_end|>\n"
        f"<|im_start|>assistant\n{target}<|im_end|>\n"
    )
    supervised = [t for t in example["labels"] if t != IGNORE_INDEX]
    assert tokenizer.decode(supervised) == f"{target}<|im_end|>\n"


def test_stable_row_shape_survives_arrow_chunking(tmp_path, records):
    """Plain Record JSON breaks datasets' chunked schema inference; the exported shape loads and round-trips."""
    from taosr1_plugins.integrations.llamafactory.rows import record_from_row

    # first rows: no attributes, no description; later rows: both (what a real catalogue mixes)
    bare = [r.item.model_copy(update={"attributes": {}, "description": None}) for r in records[:150]]
    mixed = [r.model_copy(update={"item": item}) for r, item in zip(records, bare)] + records[150:]
    plain = write_records(tmp_path / "plain.jsonl", mixed)
    with pytest.raises(Exception, match="[Cc]ast|[Cc]ouldn't|generating"):
        datasets.load_dataset("json", data_files=str(plain), split="train", chunksize=4096)
    export_llamafactory(plain, tmp_path / "lf", name="stable")
    stable = str(tmp_path / "lf" / "stable.jsonl")
    loaded = datasets.load_dataset("json", data_files=stable, split="train", chunksize=4096)
    assert [record_from_row(row) for row in loaded] == mixed
    # a small plain Record file (one chunk) also converts: the None-filled attribute keys are dropped
    small_file = str(write_records(tmp_path / "small.jsonl", records[:8]))
    small = datasets.load_dataset("json", data_files=small_file, split="train")
    assert [record_from_row(row) for row in small] == records[:8]


def test_missing_cot_and_label(tmp_path, records, tiny_model_dir):
    no_cot = [records[0].model_copy(update={"cot": None}), records[1]]
    data = write_records(tmp_path / "no_cot.jsonl", no_cot)
    with pytest.raises(DataError, match=r"no_cot.jsonl.*'cot'.*esci-"):
        export_llamafactory(data, tmp_path / "lf")
    assert not (tmp_path / "lf" / "dataset_info.json").exists()
    result = export_llamafactory(data, tmp_path / "lf", allow_missing_cot=True)
    assert (result.records, result.without_cot) == (2, 1)
    _, data_args, training_args, _, _ = lf_args(tmp_path / "lf", "no_cot", tiny_model_dir, tmp_path / "run")
    _, aligned = aligned_rows(tmp_path / "lf", "no_cot", data_args, training_args)
    token = get_scheme("esci").level(records[0].label).token
    assert aligned[0]["_response"][0]["content"] == f"<answer>{token}</answer>"
    assert aligned[1]["_response"][0]["content"].startswith("<think>\n")

    unlabelled = write_records(tmp_path / "unlabelled.jsonl", [records[0].model_copy(update={"label": None})])
    with pytest.raises(DataError, match="'label'.*no label"):
        export_llamafactory(unlabelled, tmp_path / "lf")
