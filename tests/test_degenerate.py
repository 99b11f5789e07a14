"""Loud degenerate cases (issue 31 item 6): jobs that finish with exit 0 but cannot be what was meant say so in
yellow, name the cause, and `taosr1 run --strict` stops on them (exit 2).

Each case is made for real: a shop CSV whose queries cannot fill the dev split, a CoT length budget no trace
meets, GRPO on a random model whose rollouts all score 0, pairs files that post-cot has nothing to reorder in, and
difficulty files whose prompts are all never right.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from hostile_helpers import run_cli

from taosr1_plugins.core.formats import ResponseFormat, render_response
from taosr1_plugins.core.jsonl import read_jsonl, write_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.passn.difficulty import DifficultyRow

REPO = Path(__file__).resolve().parents[1]
SCHEME = """\
name: shop
levels:
  - {key: "3", name: Exact, definition: The product is what the query asks for.}
  - {key: "2", name: Substitute, definition: A close product that differs in an attribute.}
  - {key: "1", name: Complement, definition: A product used with what the query asks for.}
  - {key: "0", name: Irrelevant, definition: Unrelated to the query.}
"""
QUERIES = ["red running shoes", "usb-c cable", "espresso cups", "wireless mouse", "yoga mat", "desk lamp",
           "water bottle", "hiking backpack"]


taosr1 = run_cli  # (exit status, stdout, stderr), each message on one line (no wrapping at a terminal width)


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    """`taosr1 run` on 8 queries of 5 shop products: the quickstart's ratios (0.7 / 0.1 / 0.2) by query put
    30 records in train, 10 in test and none in dev. ``run(*args, **config)`` writes the config and runs."""
    with open(tmp_path / "shop.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query_id", "query", "product_title", "label"])
        for q, query in enumerate(QUERIES):
            for p in range(5):
                writer.writerow([f"q{q}-{p}", query, f"{query} model {p}", (q + p) % 4])
    (tmp_path / "shop.yaml").write_text(SCHEME, encoding="utf-8")

    def run_with(*args, **sections):
        config = {"run_dir": str(tmp_path / "run"),
                  "data": {"source": "csv", "input": "shop.csv", "scheme": "shop.yaml",
                           "map": {"id": "query_id", "title": "product_title"}},
                  "cot": {"teacher": "template", "k": 1}, **sections}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.chdir(tmp_path)
        return taosr1(capsys, monkeypatch, "run", tmp_path / "config.yaml", *args)

    return run_with


def manifest(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]


def test_an_empty_dev_split_warns_again_when_skipped_and_strict_stops(tmp_path, run, capsys, monkeypatch):
    code, out, err = run("--until", "split")
    assert code == 0, err
    warning = "warning: split: split 'dev' is empty: its ratio 0.1 of 40 records is 4.0 records, but the 8 query groups"
    assert warning in out and "CumPT thresholds on dev and will fail" in out
    assert manifest(tmp_path)["split"]["outputs"] == {"train": 30, "dev": 0, "test": 10}
    assert len(manifest(tmp_path)["split"]["warnings"]) == 1

    code, out, _ = run("--until", "split")  # unchanged: skipped, and still said
    assert code == 0 and "✓ split 2/2 unchanged, skipped — train 30 · dev 0 · test 10" in out and warning in out

    code, out, err = run("--until", "cot", "--strict")
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: split: split 'dev' is empty") and "--strict stops on a stage's warning" in err
    assert "cot" not in manifest(tmp_path)  # stopped before the next stage

    # `taosr1 data split` on the same records: the same warning, exit 0; a split meant to be empty says nothing
    records = tmp_path / "run" / "data" / "all.jsonl"
    code, out, err = taosr1(capsys, monkeypatch, "data", "split", records, "--out-dir", tmp_path / "split")
    assert code == 0 and "dev: 0 records" in out
    assert "warning: split 'dev' is empty" in err and "or splitting by id would fill it" in err
    code, out, err = taosr1(capsys, monkeypatch, "data", "split", records, "--out-dir", tmp_path / "two",
                            "--ratios", "0.8,0,0.2")
    assert code == 0 and "dev: 0 records" in out and "warning" not in err


def test_a_cot_stage_that_kept_nothing_names_the_reasons_and_export_names_the_stage(tmp_path, run, capsys, monkeypatch):
    split = {"ratios": [0.5, 0.25, 0.25]}
    # the template teacher's traces run to ~60 words: a budget of 1 word drops every one, after its retries
    code, out, err = run("--until", "export", split=split, cot={"teacher": "template", "k": 1, "max_words": 1})
    assert code == 2 and "Traceback" not in err
    train = len(read_jsonl(tmp_path / "run" / "data" / "train.jsonl", Record))
    ledger = tmp_path / "run" / "cot" / "train.ledger.jsonl"
    assert (f"warning: cot: CoT kept 0 of {train} traces (teacher template): dropped {train}x reasoning over 1 words; "
            "the first, q") in out
    assert f"every reason: {ledger}" in out and "answered \"<think> Query:" in out
    assert "no records: the CoT stage kept no trace" in err and str(tmp_path / "run" / "cot" / "train.jsonl") in err
    assert manifest(tmp_path)["cot"]["status"] == "done" and manifest(tmp_path)["export"]["status"] == "failed"

    code, out, err = run("--until", "export", "--strict", split=split,
                         cot={"teacher": "template", "k": 1, "max_words": 1})
    assert code == 2 and err.startswith("error: cot: CoT kept 0 of")

    # `taosr1 cot generate`: the same warning
    code, _, err = taosr1(capsys, monkeypatch, "cot", "generate", "--data", tmp_path / "run" / "data" / "train.jsonl",
                          "--out", tmp_path / "cot.jsonl", "--max-words", "1", "--k", "0", "--no-progress")
    assert code == 0 and f"warning: CoT kept 0 of {train} traces" in err


GRPO_SETTINGS = {
    "format": "think_answer", "steps": 1, "prompts_per_step": 2, "num_generations": 2, "max_completion_length": 8,
    "dynamic_sampling": {"enabled": True, "max_extra_rollouts": 2}, "sampler": "uniform",
}


def test_grpo_whose_groups_never_had_a_spread_warns_that_the_policy_did_not_move(tmp_path, tiny_model_dir, capsys,
                                                                                  monkeypatch):
    from safetensors.torch import load_file

    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.pipeline.context import RunContext
    from taosr1_plugins.pipeline.degenerate import stage_warnings

    records = [Record(id=f"r{i}", query=query, item={"title": f"{query}, new"}, label="E", scheme="esci")
               for i, query in enumerate(QUERIES[:4])]
    write_jsonl(tmp_path / "records.jsonl", records)
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(GRPO_SETTINGS))
    # the tiny random model writes 8 tokens of noise: no rollout is well formed, every reward is 0
    code, out, err = taosr1(capsys, monkeypatch, "grpo", "train", "--model", tiny_model_dir, "--data",
                            tmp_path / "records.jsonl", "--config", tmp_path / "grpo.yaml", "--out-dir", tmp_path / "g")
    assert code == 0, err
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["frac_zero_std_after"] == 1.0 and summary["reward_first"] == 0.0
    assert ("warning: GRPO did not move the policy: every group of its 1 step had zero reward variance "
            "(frac_zero_std_after 1.0, reward 0.0): every rollout scored 0: none was well formed and right") in err
    # and it did not: the saved weights are the start model's
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "g" / "model" / "model.safetensors")
    assert all((before[name] == after[name]).all() for name in before)

    # the main job's GRPO stage reports these keys of the summary: the same warning there
    ctx = RunContext(RunConfig(run_dir=str(tmp_path / "run")))
    [warning] = stage_warnings(ctx, "grpo", {key: summary[key] for key in ("steps", "rollouts", "frac_zero_std_after",
                                                                           "extra_rollouts", "reward_first")})
    assert warning.startswith("GRPO did not move the policy")


ESCI = get_scheme("esci")
THINK_FIRST = render_response("Two of three terms match.", "S", ESCI, ResponseFormat.THINK_ANSWER)
ANSWER_FIRST = render_response("Two of three terms match.", "S", ESCI, ResponseFormat.ANSWER_FIRST)


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ([{"id": "a", "query": "q", "item": {"title": "t"}, "label": "E", "cot": "why"}],
         "1 rows hold none of the fields chosen, rejected, response (records with a cot convert without --responses)"),
        ([{"prompt": "p", "chosen": ANSWER_FIRST, "rejected": ANSWER_FIRST}], "2 responses are already answer-first"),
        ([{"prompt": "p", "chosen": "S because", "rejected": "<answer>X</answer>"}],
         "2 responses are not well-formed think-then-answer responses of the scheme (the first at line 1, field "
         "'chosen'; is --scheme the responses' own?)"),
        ([{"prompt": "p", "chosen": THINK_FIRST, "rejected": "no tags"}], None),
    ],
    ids=["records", "already answer-first", "malformed", "reordered"],
)
def test_post_cot_responses_that_reorder_nothing_say_why(tmp_path, capsys, monkeypatch, rows, said):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, err = taosr1(capsys, monkeypatch, "post-cot", "--data", data, "--out", tmp_path / "out.jsonl",
                            "--responses", "--scheme", "esci")
    assert code == 0, err
    if said is None:
        assert "warning" not in err and "1 responses answer-first" in out
    else:
        assert err.startswith(f"warning: post-cot reordered nothing in {len(rows)} rows: ") and said in err


@pytest.mark.parametrize(
    ("format_ok_rate", "cause"),
    [
        (0.0, "Every prompt is 'never' and none of the 24 pass@N samples was well formed: the sampled model does not "
              "answer in the format GRPO rewards"),
        (0.75, "Every prompt is 'never': the sampled model got none right (do the difficulty file's model and labels "
               "belong to these records?); sampling.never_max_share: 1 trains on them anyway"),
    ],
)
def test_grpo_prepare_with_every_prompt_never_right_names_the_cause_not_a_missing_config(
        tmp_path, capsys, monkeypatch, format_ok_rate, cause):
    records = [Record(id=f"r{i}", query=query, item={"title": query}, label="E", scheme="esci")
               for i, query in enumerate(QUERIES[:6])]
    write_jsonl(tmp_path / "records.jsonl", records)
    write_jsonl(tmp_path / "difficulty.jsonl", [
        DifficultyRow(id=r.id, gold="E", n=4, correct=0, pass_rate=0.0, format_ok_rate=format_ok_rate,
                      majority="I" if format_ok_rate else None, bucket="never") for r in records])
    args = ["grpo", "prepare", "--data", tmp_path / "records.jsonl", "--difficulty", tmp_path / "difficulty.jsonl",
            "--out-dir", tmp_path / "g"]
    code, _, err = taosr1(capsys, monkeypatch, *args)
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: no GRPO prompt kept of 6: 6 'never' (sampling.never_max_share keeps never-right "
                          "prompts only as a share of the others kept, and no other was kept); sampling settings: "
                          "the defaults (no --config). ")
    assert cause in err and "Invalid value for '--config'" not in err
    assert not (tmp_path / "g").exists()

    # with a --config, it is named as where the settings came from
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump({"sampling": {"never_max_share": 0.2}}))
    code, _, err = taosr1(capsys, monkeypatch, *args, "--config", tmp_path / "grpo.yaml")
    assert code == 2 and f"sampling settings: --config {tmp_path / 'grpo.yaml'}. " in err

    # and what the hint says works: never_max_share 1 keeps them
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump({"sampling": {"never_max_share": 1.0}}))
    code, out, err = taosr1(capsys, monkeypatch, *args, "--config", tmp_path / "grpo.yaml")
    assert code == 0, err
    assert json.loads(out[: out.rindex("}") + 1])["selection"]["kept"] == 6
