"""The smoke test that fits a lent GPU machine: CUDA torch, transformers, peft and accelerate, no TRL, datasets,
vLLM or network, and our pure-Python dependencies from the carried wheelhouse (benchmarks/gpu_smoke_lent.sh).

Each part runs in a process of its own, as the main job's model stages do (pipeline/stage_process.py); this
process never imports torch. On CUDA the parts run in bf16; without CUDA they run on the CPU in float32 and
the report says so (that checks the script, not the GPU paths).

  score  label probabilities from one forward pass over a padded batch, equal to each pair scored alone; CumPT
         thresholds fitted on them and the tiers they give
  serve  `taosr1 serve` on loopback: two concurrent good requests answered, a bad one answered 4xx beside them
  sft    a few SFT optimizer steps through transformers' own Trainer (bf16 autocast on CUDA), the weights kept
         fp32 (master weights): nearly every trained weight moves at a 1e-6 learning rate
  memory the GPU memory free when each part started: a part's model is given back when its process ends

    python benchmarks/gpu_smoke_lent.py --model .cache/taosr1/models/tiny-smollm2 --out runs/gpu_smoke_lent
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

PARTS = ("score", "serve", "sft")
FREE_MEMORY_SLACK_MIB = 256  # the CUDA context of a new process; a model left behind would be far more


def device_and_dtype() -> tuple[str, str]:
    import torch

    if torch.cuda.is_available():
        return "cuda", "bfloat16"
    return "cpu", "float32"


def free_mib() -> int | None:
    import torch

    return torch.cuda.mem_get_info()[0] // 2**20 if torch.cuda.is_available() else None


def esci_pairs(n: int):
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.data.samples import esci_sample_path

    return [record for record, _ in zip(import_records("esci", esci_sample_path()), range(n))]


def part_score(model: str, out: Path) -> dict:
    from taosr1_plugins.deploy.cumpt import CumPT, fit_thresholds
    from taosr1_plugins.deploy.relevance_scorer import RelevanceScorer

    device, dtype = device_and_dtype()
    records = esci_pairs(16)
    batched = RelevanceScorer(model, scheme="esci", device=device, batch_size=8, options={"dtype": dtype})
    levels = batched.scheme.keys
    probs = [[p.probs[key] for key in levels] for p in batched.predict(records)]
    del batched
    single = RelevanceScorer(model, scheme="esci", device=device, batch_size=1, options={"dtype": dtype})
    alone = [[p.probs[key] for key in levels] for p in single.predict(records[:4])]  # one pair per forward pass
    assert all(abs(sum(row) - 1) < 1e-3 and all(math.isfinite(x) for x in row) for row in probs), probs
    # a padded row sees what the row alone sees (bf16: a looser tolerance than fp32's)
    gap = max(abs(a - b) for row, single in zip(probs, alone) for a, b in zip(row, single))
    assert gap < (0.02 if dtype == "bfloat16" else 1e-4), f"batched and single probabilities differ by {gap}"
    fit = fit_thresholds(probs, [levels.index(record.label) for record in records])
    cumpt = CumPT(levels=list(levels), thresholds=list(fit.thresholds))
    tiers = [cumpt.tier(row) for row in probs]
    assert all(tier in levels for tier in tiers)
    (out / "cumpt_thresholds.json").write_text(json.dumps({"levels": list(levels), "thresholds": list(fit.thresholds)}))
    return {"pairs": len(probs), "max_batched_vs_single_gap": round(gap, 6), "tiers": tiers[:8], "dtype": dtype}


def part_serve(model: str, out: Path) -> dict:
    import socket
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    device, _ = device_and_dtype()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(out / "serve.log", "w")  # noqa: SIM115 (closed with the server, in the finally below)
    server = subprocess.Popen([sys.executable, "-m", "taosr1_plugins.cli", "serve", "--model", model, "--scheme", "esci",
                               "--device", device, "--port", str(port), "--exit-after", "300"],
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                health = json.load(urllib.request.urlopen(base + "/healthz", timeout=2))
                break
            except OSError:
                assert server.poll() is None, (out / "serve.log").read_text()[-2000:]
                time.sleep(0.5)
        else:
            raise AssertionError("the server did not come up in 5 minutes")

        def post(body: bytes) -> tuple[int, dict]:
            request = urllib.request.Request(base + "/v1/score", data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read() or b"{}")

        good = json.dumps({"pairs": [{"query": "iphone 12 case", "item": "Clear case for iPhone 12", "id": "a"},
                                     {"query": "iphone 12 case", "item": {"title": "Garden hose, 50 ft"}, "id": "b"}]})
        bad = json.dumps({"pairs": [{"query": "iphone 12 case", "item": {"price": 3}}]})
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(post, [good.encode(), bad.encode(), good.encode()]))
        (ok1, body1), (bad_status, _), (ok2, body2) = answers
        assert ok1 == ok2 == 200 and 400 <= bad_status < 500, answers
        assert [r["id"] for r in body1["results"]] == ["a", "b"] and body1 == body2
        assert all(abs(sum(r["probs"].values()) - 1) < 1e-3 for r in body1["results"])
        return {"health": health, "bad_request_status": bad_status, "result": body1["results"][0]}
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def part_sft(model: str, out: Path) -> dict:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
    )

    from taosr1_plugins.integrations.trl.finetune import tokenized_sft_row

    device, dtype = device_and_dtype()
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    # fp32 master weights whatever the checkpoint's dtype; bf16 only as the Trainer's autocast
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    records = [r.model_copy(update={"cot": "Two of three query terms are in the title."}) for r in esci_pairs(8)]
    rows = []
    for record in records:
        row = tokenized_sft_row(tokenizer, record, "answer_first", 256)
        labels = [t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"])]
        rows.append({"input_ids": row["input_ids"], "labels": labels})

    def collate(batch):
        width = max(len(r["input_ids"]) for r in batch)

        def pad(values: list[int], fill: int) -> list[int]:
            return values + [fill] * (width - len(values))

        return {"input_ids": torch.tensor([pad(r["input_ids"], tokenizer.pad_token_id) for r in batch]),
                "attention_mask": torch.tensor([pad([1] * len(r["input_ids"]), 0) for r in batch]),
                "labels": torch.tensor([pad(r["labels"], -100) for r in batch])}

    trained = [n for n, _ in policy.named_parameters() if ".layers." in n and n.endswith("proj.weight")]
    before = {n: p.detach().clone() for n, p in policy.named_parameters() if n in trained}
    args = TrainingArguments(output_dir=str(out / "sft"), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-6,
                             lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, save_strategy="no",
                             report_to=[], bf16=dtype == "bfloat16", use_cpu=device == "cpu", remove_unused_columns=False)
    result = Trainer(model=policy, args=args, train_dataset=rows, data_collator=collate).train()
    after = dict(policy.named_parameters())
    moved = sum(int((before[n] != after[n].detach()).sum()) for n in trained)
    total = sum(before[n].numel() for n in trained)
    assert all(after[n].dtype == torch.float32 for n in trained), "the master weights are not fp32"
    assert math.isfinite(result.training_loss) and moved / total > 0.99, (result.training_loss, moved / total)
    return {"steps": result.global_step, "loss": round(result.training_loss, 4), "share_of_weights_moved": round(moved / total, 4),
            "bf16_autocast": args.bf16, "device": str(next(policy.parameters()).device)}


def run_part(name: str, model: str, out: Path) -> dict:
    """In this (child) process: the part, with the free GPU memory when it started."""
    started, free = time.perf_counter(), free_mib()
    outputs = {"score": part_score, "serve": part_serve, "sft": part_sft}[name](model, out)
    device, dtype = device_and_dtype()
    return {"part": name, "device": device, "dtype": dtype, "free_mib_at_start": free,
            "seconds": round(time.perf_counter() - started, 1), **outputs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(os.environ.get("TAOSR1_CACHE_DIR", ".cache/taosr1"), "models", "tiny-smollm2"))
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_smoke_lent"))
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a child's one part
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part:
        print("RESULT " + json.dumps(run_part(args.part, args.model, args.out), default=str))
        return 0

    results, failed = [], False
    for name in PARTS:
        child = subprocess.run([sys.executable, __file__, "--part", name, "--model", args.model, "--out", str(args.out)],
                               capture_output=True, text=True, check=False)
        (args.out / f"{name}.log").write_text(child.stdout + child.stderr)
        lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
        if child.returncode == 0 and lines:
            result = json.loads(lines[-1][len("RESULT "):])
            print(f"PASS {name} {result['seconds']}s {json.dumps({k: v for k, v in result.items() if k not in ('part', 'seconds')})}")
            results.append(result)
        else:
            failed = True
            print(f"FAIL {name} (log: {args.out / f'{name}.log'})\n" + (child.stdout + child.stderr)[-3000:])
    free = [r["free_mib_at_start"] for r in results if r.get("free_mib_at_start") is not None]
    if len(free) > 1 and min(free) < free[0] - FREE_MEMORY_SLACK_MIB:
        failed = True
        print(f"FAIL memory: free GPU memory at each part's start {free} MiB: a part's memory outlived its process")
    elif len(free) > 1:
        print(f"PASS memory: free GPU memory at each part's start {free} MiB")
    else:
        print("SKIP memory: no CUDA device here (the parts ran on the CPU in float32: this checks the script, "
              "not the GPU paths)")
    assert "torch" not in sys.modules  # this process held no model and no CUDA context
    (args.out / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
