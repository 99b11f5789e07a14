"""SFT and DPO through TRL (`framework: trl`): the answer-only loss mask, then both stages of the main job."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from taosr1_plugins.core.schemes import get_scheme

REPO = Path(__file__).resolve().parents[1]


def test_sft_rows_train_on_the_answer_and_its_end_of_turn_only(tiny_model_dir, esci_records):
    from transformers import AutoTokenizer

    from taosr1_plugins.core.hf_chat import render_chat
    from taosr1_plugins.integrations.trl.finetune import tokenized_sft_row
    from taosr1_plugins.core.prompts import build_messages
    from taosr1_plugins.core.schemes import get_scheme

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    record = esci_records[0].model_copy(update={"cot": "The item is the product the query names."})
    scheme = get_scheme(record.scheme)
    row = tokenized_sft_row(tokenizer, record, "answer_first", max_length=None)
    ids, mask = row["input_ids"], row["completion_mask"]
    prompt = tokenizer.decode([i for i, m in zip(ids, mask) if not m])
    answer = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert prompt == render_chat(tokenizer, build_messages(record, scheme, "answer_first"))
    assert answer.startswith(f"<answer>{record.label}</answer>\n<think>") and answer.rstrip().endswith("<|im_end|>")
    assert mask == sorted(mask)  # one prompt block, then one answer block

    direct = tokenized_sft_row(tokenizer, record.model_copy(update={"cot": None}), "answer_first", max_length=None)
    assert tokenizer.decode([i for i, m in zip(direct["input_ids"], direct["completion_mask"]) if m]).startswith(
        f"<answer>{record.label}</answer><|im_end|>"
    )
    short = tokenized_sft_row(tokenizer, record, "answer_first", max_length=20)
    assert len(short["input_ids"]) == len(short["completion_mask"]) == 20


# not the default prompt: a model folder that fell back to the default would not match it
STYLE = {"instruction": "compact", "description_chars": 50, "term_matches": True, "term_share": True}


@pytest.mark.slow
def test_main_job_trains_sft_and_dpo_with_trl(tmp_path, tiny_model_dir):
    config = {
        "run_dir": str(tmp_path / "run"),
        "format": "answer_first",
        "prompt": STYLE,
        "data": {"source": "esci", "limit": 30},
        "model": {"base": str(tiny_model_dir)},
        "sft": {"framework": "trl", "recipe": str(REPO / "recipes/trl/sft_cot_smollm2.yaml"),
                "overrides": {"max_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2,
                              "gradient_accumulation_steps": 1, "max_samples": 8}},
        "passn": {"n": 2, "max_new_tokens": 8, "limit": 3, "batch_size": 4},
        "dpo": {"framework": "trl", "recipe": str(REPO / "recipes/trl/dpo_smollm2.yaml"),
                "overrides": {"max_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2,
                              "gradient_accumulation_steps": 1}},
        "baselines": {"direct_answer_overrides": {"max_steps": 1}},
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", "run", str(config_path), "--until", "dpo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    sft, dpo = stages["sft"]["outputs"], stages["dpo"]["outputs"]
    assert sft["steps"] == 2 and sft["examples"] == 8 and math.isfinite(sft["train_loss"])
    assert sft["examples_seen"] == 4  # 2 steps of 2
    # the end-to-end benchmark reads a TRL stage (no LLaMA-Factory train.yaml) from the trainer's count
    bench = subprocess.run([sys.executable, str(REPO / "benchmarks/bench_pipeline.py"), str(tmp_path / "run")],
                           capture_output=True, text=True, timeout=60)
    assert bench.returncode == 0, bench.stderr
    assert [line.split()[:5] for line in bench.stdout.splitlines() if line.startswith("sft ")] == [
        ["sft", "training", "examples", "seen", "4"]]
    assert dpo["steps"] == 1 and dpo["pairs"] == stages["pairs"]["outputs"]["pairs"] and math.isfinite(dpo["train_loss"])
    for stage in ("sft", "dpo"):
        assert (tmp_path / "run" / stage / "model" / "model.safetensors").exists()
        # the runner, not the TRL backend, writes the prompt the model learnt into its folder
        assert json.loads((tmp_path / "run" / stage / "model" / "taosr1_prompt.json").read_text()) == STYLE
    assert "grpo" not in stages

    # the direct-answer baseline follows sft.framework: TRL with the TRL recipe, on the same first 8 examples; then
    # the same model decided like the final row, with a calibration and CumPT thresholds fitted on dev
    baseline = subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", "baselines", str(config_path), "--only", "direct_answer",
         "--only", "direct_answer_cumpt"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert baseline.returncode == 0, baseline.stdout[-3000:] + baseline.stderr[-3000:]
    baselines = tmp_path / "run" / "baselines"
    result = json.loads((baselines / "direct_answer" / "result.json").read_text())
    assert result["details"]["train_pairs"] == 8 and result["details"]["steps"] == 1
    test_pairs = len((tmp_path / "run" / "data" / "test.jsonl").read_text().splitlines())
    assert result["metrics"]["n"] == test_pairs
    from taosr1_plugins.deploy.calibration import load_cumpt
    from taosr1_plugins.deploy.scoring import read_scores

    cumpt = load_cumpt(baselines / "direct_answer_cumpt" / "cumpt.json").to_cumpt()
    raw = {row.id: row for row in read_scores(baselines / "direct_answer" / "scores.jsonl").rows}
    decided = [json.loads(line) for line in (baselines / "direct_answer_cumpt" / "predictions.jsonl").read_text().splitlines()]
    assert len(decided) == test_pairs
    assert all(row["predicted"] == cumpt.tier([raw[row["id"]].probs[k] for k in ("E", "S", "C", "I")]) for row in decided)


def test_label_weighted_loss_is_the_plain_loss_plus_the_label_token_reweighted(tiny_model_dir, esci_records):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from taosr1_plugins.core.formats import render_response
    from taosr1_plugins.integrations.trl.finetune import label_weighted_loss, tokenized_sft_row
    from taosr1_plugins.deploy.scoring import ANSWER_PREFIX

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    record = esci_records[0].model_copy(update={"cot": "Two of three terms match."})
    row = tokenized_sft_row(tokenizer, record, "answer_first", None)
    ids = torch.tensor([row["input_ids"]])
    labels = torch.where(torch.tensor([row["completion_mask"]]) == 1, ids, torch.tensor(-100))
    outputs = model(input_ids=ids)
    prefix = len(tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
    n = (labels != -100).sum()

    plain = label_weighted_loss(1.0, prefix)(outputs, labels, num_items_in_batch=n)
    assert plain.item() == pytest.approx(model(input_ids=ids, labels=labels).loss.item(), rel=1e-5)

    # the weighted position is the label's: the completion starts with <answer>, then the label token
    start = row["completion_mask"].index(1)
    label_token = row["input_ids"][start + prefix]
    assert tokenizer.decode([label_token]) == get_scheme("esci").level(record.label).token
    log_probs = torch.log_softmax(outputs.logits[0, start + prefix - 1].float(), dim=-1)
    label_nll = -log_probs[label_token].item()
    weighted = label_weighted_loss(5.0, prefix)(outputs, labels, num_items_in_batch=n)
    assert weighted.item() == pytest.approx(plain.item() + 4 * label_nll / n.item(), rel=1e-5)
    assert render_response(record.cot, record.label, get_scheme("esci"), "answer_first").startswith(ANSWER_PREFIX)


def test_freeze_trainable_layers_trains_only_the_last_layers(tmp_path, tiny_model_dir, esci_records):
    import torch
    from safetensors.torch import load_file

    from taosr1_plugins.errors import DataError
    from taosr1_plugins.integrations.trl.finetune import run_sft_trl

    args = {**yaml.safe_load((REPO / "recipes/trl/sft_cot_smollm2.yaml").read_text()),
            "max_steps": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
            "learning_rate": 1e-2, "warmup_steps": 0, "freeze_trainable_layers": 1}
    records = [r.model_copy(update={"cot": "Two of three terms match."}) for r in esci_records[:4]]
    run_sft_trl(tiny_model_dir, records, tmp_path / "sft", args, "answer_first")

    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "sft" / "model.safetensors")
    layers = 1 + max(int(name.split(".")[2]) for name in before if name.startswith("model.layers."))
    last = f"model.layers.{layers - 1}."
    changed = {name for name in before if name in after and not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith(last) for name in changed)
    assert any(name.startswith(last) and name.endswith("proj.weight") for name in changed)

    with pytest.raises(DataError, match="freeze_trainable_layers"):
        run_sft_trl(tiny_model_dir, records, tmp_path / "bad", {**args, "freeze_trainable_layers": layers + 1}, "answer_first")


def _bf16_checkpoint(source: Path, out: Path) -> Path:
    """``source`` saved in bf16, as a GPU-trained stage leaves its model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def test_trl_trains_fp32_master_weights_from_a_bf16_checkpoint(tmp_path, tiny_model_dir, esci_records):
    """A few steps at the GRPO recipes' learning rate move (nearly) every trained weight: the policy's master
    weights are fp32 whatever the checkpoint's dtype. In bf16 the same steps leave most weights where they were,
    below bf16's resolution, which the control below shows on the same batch."""
    import torch
    from safetensors.torch import load_file

    from taosr1_plugins.integrations.trl.compat import load_policy
    from taosr1_plugins.integrations.trl.finetune import run_sft_trl, tokenized_sft_row

    checkpoint = _bf16_checkpoint(tiny_model_dir, tmp_path / "bf16")
    learning_rate = yaml.safe_load((REPO / "recipes/trl/grpo_smollm2.yaml").read_text())["learning_rate"]
    records = [r.model_copy(update={"cot": "Two of three terms match."}) for r in esci_records[:6]]
    args = {**yaml.safe_load((REPO / "recipes/trl/sft_cot_smollm2.yaml").read_text()),
            "max_steps": 3, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
            "learning_rate": learning_rate, "warmup_steps": 0, "lr_scheduler_type": "constant"}
    run_sft_trl(checkpoint, records, tmp_path / "sft", args, "answer_first")
    before, after = load_file(checkpoint / "model.safetensors"), load_file(tmp_path / "sft" / "model.safetensors")
    trained = [name for name in before if ".layers." in name and name.endswith("proj.weight")]
    changed = sum(int((before[n].float() != after[n].float()).sum()) for n in trained)
    total = sum(before[n].numel() for n in trained)
    assert after[trained[0]].dtype == torch.float32 and changed / total > 0.99

    # control: the same AdamW steps on bf16 weights
    policy, tokenizer = load_policy(str(checkpoint))
    policy.to(torch.bfloat16)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=learning_rate)
    rows = [tokenized_sft_row(tokenizer, r, "answer_first", None) for r in records[:2]]
    start = {n: p.detach().clone() for n, p in policy.named_parameters() if n in trained}
    for _ in range(3):
        ids = torch.tensor([rows[0]["input_ids"]])
        policy(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    moved = sum(int((start[n] != p.detach()).sum()) for n, p in policy.named_parameters() if n in start)
    assert moved / total < 0.5
