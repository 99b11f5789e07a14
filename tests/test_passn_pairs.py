"""DPO pair rules on crafted samples, the difficulty file, and the LLaMA-Factory ranking dataset loaded
by LLaMA-Factory's own loader as pairwise data."""

from __future__ import annotations

import json

import pytest
from llamafactory_helpers import ESCI_SAMPLE, esci_records_with_cot, write_records
from passn_helpers import (
    crafted_row,
    gold_broken,
    no_answer,
    other_label,
    right,
    wrong,
    wrong_broken,
)
from typer.testing import CliRunner

from taosr1_plugins.cli import app
from taosr1_plugins.passn.difficulty import DifficultyBucket, DifficultyRow
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.formats import parse_response, render_response
from taosr1_plugins.core.jsonl import read_jsonl, write_jsonl
from taosr1_plugins.integrations import dpo_pair_writers
from taosr1_plugins.passn.pairs import PairOptions, build_pairs, pairs_table
from taosr1_plugins.passn.sample import write_difficulty
from taosr1_plugins.core.schemes import get_scheme

pytestmark = pytest.mark.skipif(not ESCI_SAMPLE.is_file(), reason="shared ESCI sample not beside the checkout")


@pytest.fixture(scope="module")
def records():
    rows = esci_records_with_cot()
    # E-labelled and S/I-labelled prompts, so the balance table has several levels
    return {name: rows[i] for name, i in
            {"all_right": 0, "mixed": 1, "all_wrong": 13, "capped": 25, "dupes": 26, "format_only": 2, "no_cot": 27}.items()}


@pytest.fixture(scope="module")
def rows(records):
    r = records
    return {
        "all_right": crafted_row(r["all_right"], [right(r["all_right"], f"reason {i}") for i in range(4)]),
        # rejected order must be: wrong label (valid format), wrong label (broken format), broken format
        "mixed": crafted_row(r["mixed"], [
            no_answer(r["mixed"]),
            wrong_broken(r["mixed"], other_label(r["mixed"])),
            right(r["mixed"]),
            wrong(r["mixed"], other_label(r["mixed"])),
        ]),
        "all_wrong": crafted_row(r["all_wrong"], [wrong(r["all_wrong"], other_label(r["all_wrong"])), no_answer(r["all_wrong"])]),
        "capped": crafted_row(r["capped"], [right(r["capped"], "a"), right(r["capped"], "b"), right(r["capped"], "c"),
                                            wrong(r["capped"], other_label(r["capped"]))]),
        "dupes": crafted_row(r["dupes"], [right(r["dupes"]), right(r["dupes"]),
                                          wrong(r["dupes"], other_label(r["dupes"])), wrong(r["dupes"], other_label(r["dupes"]))]),
        # every sample names the gold label, one in a broken format: no label signal, a format signal
        "format_only": crafted_row(r["format_only"], [right(r["format_only"]), gold_broken(r["format_only"])]),
        "no_cot": crafted_row(r["no_cot"], [no_answer(r["no_cot"], "hmm"), no_answer(r["no_cot"], "unsure")]),
    }


@pytest.fixture
def samples_file(tmp_path, rows):
    path = tmp_path / "samples.jsonl"
    write_jsonl(path, [row.model_dump(mode="json", by_alias=True) for row in rows.values()])
    return path


def sft_records(records):
    return [rec for name, rec in records.items() if name != "no_cot"]


def pairs_by_id(out_dir, name="taosr1_dpo"):
    found = {}
    for line in (out_dir / f"{name}.jsonl").read_text().splitlines():
        row = json.loads(line)
        found.setdefault(row["id"], []).append(row)
    return found


def test_sample_rows_record_parse_and_pass_stats(rows, records):
    mixed = rows["mixed"]
    assert [r.correct for r in mixed.responses] == [False, False, True, False]
    assert mixed.stats.correct == 1 and mixed.stats.pass_at_1 == 0.25 and mixed.stats.pass_at_n
    wrong_label = other_label(records["mixed"])
    assert mixed.stats.label_distribution == dict(sorted({records["mixed"].label: 1, wrong_label: 2, "<invalid>": 1}.items(),
                                                         key=lambda kv: [*get_scheme("esci").keys, "<invalid>"].index(kv[0])))
    assert mixed.stats.majority == wrong_label and not mixed.stats.majority_correct
    assert rows["all_right"].stats.pass_at_1 == 1.0 and rows["all_right"].stats.majority_correct
    assert not rows["all_wrong"].stats.pass_at_n


def test_pair_rules(tmp_path, samples_file, records):
    summary = build_pairs(samples_file, sft_records(records), tmp_path / "out", PairOptions(max_pairs_per_prompt=2),
                          writers=dpo_pair_writers())
    found = pairs_by_id(tmp_path / "out")
    scheme = get_scheme("esci")
    ids = {name: rec.id for name, rec in records.items()}

    # all correct: skipped (also the prompt whose samples all name the gold label, one malformed)
    assert ids["all_right"] not in found and ids["format_only"] not in found
    assert summary["skipped_all_correct"] == 2
    # rejected preference: wrong label in a valid format, then wrong label with a broken format
    mixed = found[ids["mixed"]]
    assert [parse_response(p["rejected"]["content"], scheme) for p in mixed] == [
        (other_label(records["mixed"]), parse_response(mixed[0]["rejected"]["content"], scheme).reasoning, True),
        (other_label(records["mixed"]), "", False),
    ]
    assert all(p["chosen"]["content"] == right(records["mixed"]) for p in mixed)
    # all wrong: the gold CoT, rendered in the response format, is chosen
    rec = records["all_wrong"]
    (first, second) = found[ids["all_wrong"]]
    assert first["chosen"]["content"] == render_response(rec.cot, rec.label, scheme, "think_answer")
    assert first["rejected"]["content"] == wrong(rec, other_label(rec)) and second["rejected"]["content"] == no_answer(rec)
    # all wrong without a gold CoT: skipped and counted
    assert ids["no_cot"] not in found and summary["skipped_all_wrong_no_gold"] == 1
    # cap: 3 distinct chosen x 1 rejected -> 2 pairs, different chosen texts
    capped = found[ids["capped"]]
    assert len(capped) == 2 and len({p["chosen"]["content"] for p in capped}) == 2
    # dedupe: identical chosen and identical rejected texts give one pair
    assert len(found[ids["dupes"]]) == 1
    assert summary["pairs"] == sum(len(v) for v in found.values()) == 2 + 2 + 2 + 1
    # label balance per gold level
    per_level = summary["per_level"]
    assert per_level["E"]["prompts"] == 3 and per_level["E"]["pairs"] == 2 and per_level["E"]["skipped_all_correct"] == 2
    assert per_level["I"]["gold_cot_used"] == 1 and per_level["S"]["pairs"] == 3
    assert sum(level["pairs"] for level in per_level.values()) == summary["pairs"]
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(pairs_table(summary))
    assert "all correct (skipped)" in console.export_text()


def test_pair_options_keep_all_correct_and_no_gold_cot(tmp_path, samples_file, records):
    options = PairOptions(max_pairs_per_prompt=1, skip_all_correct=False, gold_cot_when_all_wrong=False)
    summary = build_pairs(samples_file, sft_records(records), tmp_path / "out", options, writers=dpo_pair_writers())
    found = pairs_by_id(tmp_path / "out")
    (pair,) = found[records["format_only"].id]  # format-only pair: valid vs broken, both naming the gold label
    assert pair["rejected"]["content"] == gold_broken(records["format_only"])
    assert records["all_right"].id not in found  # nothing to reject
    assert records["all_wrong"].id not in found and summary["gold_cot_used"] == 0
    assert all(len(v) == 1 for v in found.values())


def test_openrlhf_rows_match_llamafactory_rows(tmp_path, samples_file, records):
    build_pairs(samples_file, sft_records(records), tmp_path / "out", writers=dpo_pair_writers())
    lf = [json.loads(line) for line in (tmp_path / "out" / "taosr1_dpo.jsonl").read_text().splitlines()]
    orlhf = [json.loads(line) for line in (tmp_path / "out" / "taosr1_dpo.openrlhf.jsonl").read_text().splitlines()]
    assert len(lf) == len(orlhf) > 0
    for a, b in zip(lf, orlhf):
        assert b["prompt"] == [{"role": "system", "content": a["system"]}, *a["conversations"]]
        assert b["chosen"] == [a["chosen"]] and b["rejected"] == [a["rejected"]]
        assert len(a["conversations"]) % 2 == 1


def test_difficulty_file(tmp_path, samples_file, rows):
    out = tmp_path / "difficulty.jsonl"
    summary = write_difficulty(samples_file, out)
    found = {row.id: row for row in read_jsonl(out, DifficultyRow)}
    assert len(found) == len(rows) == summary["prompts"]
    assert found[rows["all_right"].id].bucket is DifficultyBucket.ALWAYS
    assert found[rows["all_wrong"].id].bucket is DifficultyBucket.NEVER
    mixed = found[rows["mixed"].id]
    assert (mixed.n, mixed.correct, mixed.pass_rate, mixed.bucket) == (4, 1, 0.25, DifficultyBucket.MEDIUM)


def test_bad_samples_file_names_line_and_field(tmp_path, samples_file):
    lines = samples_file.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["gold"]
    samples_file.write_text("\n".join([lines[0], json.dumps(broken), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"samples.jsonl:2: field 'gold'"):
        write_difficulty(samples_file, tmp_path / "d.jsonl")


def test_cli_pairs_and_difficulty(tmp_path, samples_file, records):
    cot = write_records(tmp_path / "cot.jsonl", sft_records(records))
    runner = CliRunner()
    result = runner.invoke(app, ["passn", "pairs", "--samples", str(samples_file), "--sft-data", str(cot),
                                 "--out-dir", str(tmp_path / "lf"), "--max-pairs-per-prompt", "1"])
    assert result.exit_code == 0, result.output
    assert "DPO pairs (taosr1_dpo): 4 from 7 prompts" in result.output
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert info["taosr1_dpo"]["ranking"] is True and info["taosr1_dpo"]["formatting"] == "sharegpt"
    result = runner.invoke(app, ["passn", "difficulty", "--samples", str(samples_file), "--out", str(tmp_path / "d.jsonl")])
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(tmp_path / "d.jsonl", DifficultyRow)) == 7


def test_llamafactory_loads_ranking_dataset_as_pairwise(tmp_path, monkeypatch, samples_file, records, tiny_model_dir):
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    summary = build_pairs(samples_file, sft_records(records), tmp_path / "lf", writers=dpo_pair_writers())
    model_args, data_args, training_args, _, _ = get_train_args({
        "model_name_or_path": str(tiny_model_dir), "stage": "dpo", "do_train": True, "finetuning_type": "full",
        "dataset_dir": str(tmp_path / "lf"), "dataset": "taosr1_dpo", "template": "smollm2", "cutoff_len": 4096,
        "output_dir": str(tmp_path / "run"), "overwrite_output_dir": True, "report_to": "none", "use_cpu": True,
    })
    tokenizer = load_tokenizer(model_args)["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    # the DPO workflow loads its data with stage="rm" (pairwise)
    module = get_dataset(template, model_args, data_args, training_args, stage="rm", tokenizer=tokenizer)
    train = module["train_dataset"]
    assert len(train) == summary["pairs"]
    assert {"chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"} <= set(train.column_names)
    first = json.loads((tmp_path / "lf" / "taosr1_dpo.jsonl").read_text().splitlines()[0])
    chosen = tokenizer.decode(train[0]["chosen_input_ids"])
    rejected = tokenizer.decode(train[0]["rejected_input_ids"])
    prompt = (f"<|im_start|>system\n{first['system']}<|im_end|>\n<|im_start|>user\n"
              f"{first['conversations'][0]['content']}<|im_end|>\n<|im_start|>assistant\n")
    assert chosen == prompt + first["chosen"]["content"] + "<|im_end|>\n"
    assert rejected == prompt + first["rejected"]["content"] + "<|im_end|>\n"
    supervised = [t for t in train[0]["chosen_labels"] if t != -100]
    assert tokenizer.decode(supervised) == first["chosen"]["content"] + "<|im_end|>\n"
