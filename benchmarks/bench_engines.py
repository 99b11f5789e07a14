"""HF (transformers) against vLLM on one model and the same pairs, in one run; prints vLLM/HF ratios.

    .venv-vllm/bin/python benchmarks/bench_engines.py [--model DIR] [--pairs 16] [--new-tokens 16]

Runs in the vLLM environment (it has both engines; `make bench` runs it there). Measures, in this order:
- engine start seconds (HF: load_chat_model; vLLM: the engine's start, workers included);
- pass@N prompts/s: each backend's ``sample`` (n=4, 48 new tokens, temperature 1) on ``--pairs`` chat prompts;
- generation tokens/s at batch 1, 8 and 64: greedy, ``--new-tokens`` (16), counted from what each engine returns;
- scoring pairs/s (label probabilities, one forward pass per pair): HF at batch 16; vLLM with and without
  prefix caching (a second engine: the answer-first prompts share their system prompt);
- explanation tokens/s: greedy reasoning after the label, 48 tokens at most.
Start-up is printed apart: a stage pays it once, so whether vLLM wins a stage end to end is start-up plus its
work at that stage's size (docs/cpu-training.md works it out for the shipped configs).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_ESCI = REPO.parent / "shared" / "data" / "esci_sample" / "esci_200_with_titles.csv.gz"
VLLM_OPTIONS = {"max_model_len": 1024}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            flags = Path("/proc/cpuinfo").read_text()
            return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores, AVX512-BF16 {'yes' if 'avx512_bf16' in flags else 'no'})"
    return platform.processor() or "unknown CPU"


def row(name: str, hf: float, vllm: float, unit: str) -> None:
    print(f"{name:<38} HF {hf:9.2f} {unit:<9} vLLM {vllm:9.2f} {unit:<9} vLLM/HF {vllm / hf:5.2f}x", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: SmolLM2-135M-Instruct, prepared offline)")
    parser.add_argument("--data", default=str(SHARED_ESCI), help="ESCI CSV (default: ../shared/data sample)")
    parser.add_argument("--pairs", type=int, default=16, help="pass@N prompts and scored pairs (a few minutes on 2 cores)")
    parser.add_argument("--new-tokens", type=int, default=16, help="greedy tokens per prompt in the generation rows")
    args = parser.parse_args(argv)

    import torch

    from taosr1_plugins.core.formats import ResponseFormat
    from taosr1_plugins.core.hf_chat import generate_chat, load_chat_model
    from taosr1_plugins.core.models import prepare_smollm2
    from taosr1_plugins.core.prompts import build_messages, prompt_style_of
    from taosr1_plugins.core.schemes import get_scheme
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.deploy.scorers.hf import HFLabelScorer
    from taosr1_plugins.deploy.scorers.vllm import VLLMLabelScorer
    from taosr1_plugins.core.vllm.engine import close_engine
    from taosr1_plugins.passn.backends.hf import HFBackend
    from taosr1_plugins.passn.backends.vllm import VLLMBackend
    from taosr1_plugins.passn.generation import SamplingParams

    model = str(args.model or prepare_smollm2(progress=False))
    scheme = get_scheme("esci")
    records = list(import_records("esci", args.data))[: max(args.pairs, 64)]
    pairs = records[: args.pairs]
    style = prompt_style_of(model)
    conversations = [build_messages(r, scheme, ResponseFormat.ANSWER_FIRST, style) for r in records]
    print(f"bench_engines: {Path(model).name}, {len(pairs)} ESCI pairs, fp32, {cpu_name()}; torch threads "
          f"{torch.get_num_threads()}", flush=True)

    chat, hf_start = timed(lambda: load_chat_model(model, device="cpu", dtype="float32"))
    # the engine as the pass@N stage starts it; the scorers below use the same one
    vllm_backend, vllm_start = timed(lambda: VLLMBackend(model=model, **VLLM_OPTIONS,
                                                         engine_args={"enable_prefix_caching": True}))
    llm = vllm_backend.llm
    row("engine start", hf_start, vllm_start, "s")

    # pass@N: each backend's sample(), as the pass@N stage calls it
    hf_backend = HFBackend(model=model, device="cpu", dtype="float32", batch_size=8)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=48, seed=0)
    _, hf_s = timed(lambda: hf_backend.sample(conversations[: len(pairs)], params))
    _, vllm_s = timed(lambda: vllm_backend.sample(conversations[: len(pairs)], params))
    row("pass@N prompts/s (n=4, 48 tokens)", len(pairs) / hf_s, len(pairs) / vllm_s, "prompts/s")
    del hf_backend

    import vllm

    for batch in (1, 8, 64):
        chosen = conversations[:batch]
        replies, hf_s = timed(lambda: generate_chat(chat, chosen, max_new_tokens=args.new_tokens, batch_size=batch))
        hf_tokens = sum(r.completion_tokens for r in replies)
        outputs, vllm_s = timed(lambda: llm.chat([list(c) for c in chosen], vllm.SamplingParams(max_tokens=args.new_tokens, temperature=0),
                                                 use_tqdm=False))
        vllm_tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        row(f"generation tokens/s, batch {batch}", hf_tokens / hf_s, vllm_tokens / vllm_s, "tokens/s")

    hf_scorer = HFLabelScorer(chat, scheme, batch_size=16, max_explain_tokens=48, style=style)
    vllm_scorer = VLLMLabelScorer(llm, llm.get_tokenizer(), scheme, max_explain_tokens=48, style=style)
    _, hf_score_s = timed(lambda: hf_scorer.probabilities(pairs))
    _, cached_s = timed(lambda: vllm_scorer.probabilities(pairs))
    row("scoring pairs/s, prefix caching", len(pairs) / hf_score_s, len(pairs) / cached_s, "pairs/s")

    labels = [scheme.keys[0]] * 8
    hf_texts, hf_s = timed(lambda: hf_scorer.explain(pairs[:8], labels))
    vllm_texts, vllm_s = timed(lambda: vllm_scorer.explain(pairs[:8], labels))
    tokens = chat.tokenizer
    row("explanation tokens/s (8 pairs, <=48)", sum(len(tokens.encode(t)) for t in hf_texts) / hf_s,
        sum(len(tokens.encode(t)) for t in vllm_texts) / vllm_s, "tokens/s")

    close_engine()
    llm, start = timed(lambda: VLLMBackend(model=model, **VLLM_OPTIONS, engine_args={"enable_prefix_caching": False}).llm)
    uncached = VLLMLabelScorer(llm, llm.get_tokenizer(), scheme, style=style)
    _, plain_s = timed(lambda: uncached.probabilities(pairs))
    row("scoring pairs/s, no prefix caching", len(pairs) / hf_score_s, len(pairs) / plain_s, "pairs/s")
    print(f"prefix caching speeds vLLM scoring {plain_s / cached_s:.2f}x (second engine start {start:.1f} s)")
    close_engine()


if __name__ == "__main__":  # vLLM starts its workers with spawn: the engine is built only under this guard
    main()
