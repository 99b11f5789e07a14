"""Post-CoT scoring with the hf adapter on the tiny model: padding correctness, resumability, CLI, post-CoT data."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from taosr1_plugins.cli import app
from taosr1_plugins.errors import DataError, OutputExistsError
from taosr1_plugins.core.formats import ResponseFormat, parse_response, render_response
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins import plugins
from taosr1_plugins.deploy.post_cot import convert_records, convert_responses, to_answer_first
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import (
    ScoreSettings,
    read_scores,
    renormalise,
    score_records,
    scoring_prompt,
)

ESCI = get_scheme("esci")


@pytest.fixture(scope="module")
def tiny_scorer(tiny_model_dir):
    return plugins.get("deployment_adapter", "hf")(str(tiny_model_dir), ESCI, device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def pairs(esci_records):
    # different prompt lengths, so a batch really is padded
    return sorted(esci_records[:40], key=lambda r: len(r.item.description or ""))[::5][:8]


def test_renormalise():
    assert renormalise([0.0, 0.0]) == [0.5, 0.5]
    p = renormalise([1000.0, 999.0, -math.inf])  # large logits must not overflow
    assert p[0] == pytest.approx(1 / (1 + math.exp(-1))) and p[2] == 0.0
    with pytest.raises(ValueError):
        renormalise([-math.inf, -math.inf])


def test_adapters_are_plugins():
    assert {"hf", "vllm"} <= set(plugins.registered("deployment_adapter"))


def test_vllm_adapter_is_import_guarded(tiny_model_dir):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="vllm"):
            plugins.get("deployment_adapter", "vllm")(str(tiny_model_dir), ESCI)
    else:
        pytest.skip("vLLM is installed; this checks the message when it is not")


def test_prompt_ends_at_the_answer_position(tiny_scorer, pairs):
    text = scoring_prompt(tiny_scorer.chat.tokenizer, pairs[0], ESCI)
    assert text.endswith("<|im_start|>assistant\n<answer>")
    assert "first the level inside <answer></answer>" in text  # the answer-first system prompt
    assert tiny_scorer.token_ids == [tiny_scorer.chat.tokenizer.convert_tokens_to_ids(t) for t in "ESCI"]


def test_batched_scores_equal_unbatched(tiny_scorer, pairs):
    lengths = {len(tiny_scorer.chat.tokenizer.encode(scoring_prompt(tiny_scorer.chat.tokenizer, r, ESCI))) for r in pairs}
    assert len(lengths) > 1  # the batch needs padding
    tiny_scorer.batch_size = len(pairs)
    batched = tiny_scorer.probabilities(pairs)
    tiny_scorer.batch_size = 1
    alone = tiny_scorer.probabilities(pairs)
    tiny_scorer.batch_size = 8
    for b, a in zip(batched, alone):
        assert sum(b) == pytest.approx(1.0)
        assert b == pytest.approx(a, abs=1e-5)


def test_explanation_follows_the_label(tiny_scorer, pairs):
    tiny_scorer.max_explain_tokens = 8
    texts = tiny_scorer.explain(pairs[:2], ["E", "I"])
    assert len(texts) == 2 and all(isinstance(t, str) and "</think>" not in t for t in texts)


class StopAfter:
    """Wraps the real scorer and raises after ``n`` batches: an interrupted job."""

    def __init__(self, scorer, n):
        self.scorer, self.scheme, self.left = scorer, scorer.scheme, n

    def probabilities(self, records):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.scorer.probabilities(records)


def test_score_records_resumes_an_interrupted_run(tiny_scorer, pairs, tmp_path):
    out = tmp_path / "scores.jsonl"
    settings = ScoreSettings(batch_size=3, progress=False)
    with pytest.raises(KeyboardInterrupt):
        score_records(StopAfter(tiny_scorer, 1), pairs, out, settings)
    assert not out.exists()
    assert len((tmp_path / "scores.jsonl.partial").read_text().splitlines()) == 3
    score_records(tiny_scorer, pairs, out, settings)
    resumed = read_scores(out)
    assert [row.id for row in resumed.rows] == [r.id for r in pairs]
    fresh = tmp_path / "fresh.jsonl"
    score_records(tiny_scorer, pairs, fresh, settings)
    assert [row.probs for row in read_scores(fresh).rows] == [row.probs for row in resumed.rows]
    row = resumed.rows[0]
    assert row.gold == pairs[0].label and row.label == max(row.probs, key=row.probs.get)
    with pytest.raises(OutputExistsError):
        score_records(tiny_scorer, pairs, out, settings)


def test_score_command(tiny_model_dir, pairs, tmp_path):
    data = tmp_path / "records.jsonl"
    write_jsonl(data, pairs)
    out = tmp_path / "scores.jsonl"
    args = ["score", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out), "--limit", "3",
            "--batch-size", "2", "--device", "cpu", "--no-progress", "--explain", "--max-explain-tokens", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_scores(out).rows
    assert len(rows) == 3 and all(row.explanation is not None for row in rows)
    assert set(rows[0].probs) == set(ESCI.keys)

    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "query": "q", "scheme": "esci"}) + "\n")
    result = CliRunner().invoke(app, ["score", "--model", str(tiny_model_dir), "--data", str(bad), "--out",
                                      str(tmp_path / "o.jsonl")], catch_exceptions=False)
    # a DataError: one line naming file, line and field, status 2 (the command group reports it)
    assert result.exit_code == 2 and "bad.jsonl:1: field 'item'" in " ".join(result.output.split())


def test_post_cot_transform(esci_records, tmp_path):
    records = [r.model_copy(update={"cot": f"Reasoning about {r.query}."}) for r in esci_records[:3]]
    data = tmp_path / "cot.jsonl"
    write_jsonl(data, records)
    out = tmp_path / "post_cot.jsonl"
    report = convert_records(data, out)
    assert report.converted == 3
    row = json.loads(out.read_text().splitlines()[0])
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assistant = row["messages"][2]["content"]
    assert assistant.startswith(f"<answer>{ESCI.level(records[0].label).token}</answer>")
    assert parse_response(assistant, ESCI, ResponseFormat.ANSWER_FIRST).format_ok

    think_first = render_response("why", "S", ESCI, ResponseFormat.THINK_ANSWER)
    assert to_answer_first(think_first, ESCI) == "<answer>S</answer>\n<think>\nwhy\n</think>"
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text(json.dumps({"prompt": "p", "chosen": think_first, "rejected": "no tags at all"}) + "\n")
    result = convert_responses(pairs_file, tmp_path / "pairs_af.jsonl", "esci")
    assert (result.converted, result.kept_as_is) == (1, 1)
    converted = json.loads((tmp_path / "pairs_af.jsonl").read_text())
    assert converted["chosen"].startswith("<answer>S</answer>") and converted["rejected"] == "no tags at all"

    no_cot = tmp_path / "no_cot.jsonl"
    write_jsonl(no_cot, esci_records[:1])
    with pytest.raises(DataError, match="cot") as info:
        convert_records(no_cot, tmp_path / "x.jsonl")
    assert info.value.line == 1
