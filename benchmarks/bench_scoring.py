"""Answer-first scoring + CumPT vs generating the whole response, on the same model and pairs, in one run.

    .venv/bin/python benchmarks/bench_scoring.py [--model DIR] [--pairs 16] [--format answer_first] [--max-new-tokens 256]

Measures (one model load, same pairs, same batch size):
- answer-first scoring (one forward pass per pair, label probabilities, CumPT tiers) in pairs/s, with the
  model's own prompt style and with the full prompt (level definitions, 600 description characters);
- generating the whole response in ``--format`` (the form the run trains) until every response closes, with
  ``--max-new-tokens`` only as a cap, then parsing the label; pairs/s and the ratio to scoring. The count of
  parsed labels is printed: a ratio against a generator that was cut off would not be like for like;
- the hf adapter's overhead over a raw model forward on the same tokenised batches (ratio of times);
- macro-F1 of both modes on the held-out half of the pairs (CumPT thresholds fitted on the other half,
  split by query). With a handful of pairs and an untrained model these F1 figures are noisy; the speed
  ratios are the point;
- the ``explain: auto`` curve: for each ``--explain-margins`` value, the share of pairs whose tier margin
  is below it (those get their reasoning decoded, ``--max-explain-tokens`` at most), the pairs/s of
  scoring plus those explanations (measured: each point decodes its own pairs), and the macro-F1 of the
  CumPT tiers of the explained vs the unexplained held-out pairs (the explained ones should be the
  harder ones). A margin above 1 explains every pair (``always``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_ESCI = REPO.parent / "shared" / "data" / "esci_sample" / "esci_200_with_titles.csv.gz"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: SmolLM2-135M-Instruct, prepared offline)")
    parser.add_argument("--data", default=str(SHARED_ESCI), help="ESCI CSV (default: ../shared/data sample)")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="cap only: generation stops when responses close")
    parser.add_argument("--format", default="answer_first", choices=["answer_first", "think_answer"],
                        help="the response form generated (the run's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--explain-margins", default="0.05,0.1,0.2,1.01",
                        help="explain: auto margins to measure, comma-separated (above 1: every pair)")
    parser.add_argument("--max-explain-tokens", type=int, default=64)
    args = parser.parse_args(argv)

    import torch

    from taosr1_plugins.deploy.cumpt import CumPT, argmax_tier, fit_thresholds
    from taosr1_plugins.evaluation.metrics import compute_metrics
    from taosr1_plugins.core.formats import ResponseFormat, parse_response
    from taosr1_plugins.core.hf_chat import generate_chat, load_chat_model
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.models import prepare_smollm2
    from taosr1_plugins.core.prompts import FULL, build_messages, prompt_style_of
    from taosr1_plugins.deploy.scorers.hf import HFLabelScorer
    from taosr1_plugins.deploy.scoring import records_scheme, scoring_prompt
    from taosr1_plugins.data.splits import GROUP_KEYS, split_groups

    model = args.model or str(prepare_smollm2(progress=False))
    records = list(import_records("esci", args.data))[: args.pairs]
    scheme = records_scheme(records)
    dev, test = split_groups(records, GROUP_KEYS["query"], [0.5, 0.5], seed=0)
    chat = load_chat_model(model, device=args.device)
    style = prompt_style_of(model)
    scorer = HFLabelScorer(chat, scheme, batch_size=args.batch_size, style=style,
                           max_explain_tokens=args.max_explain_tokens)
    full_scorer = HFLabelScorer(chat, scheme, batch_size=args.batch_size, style=FULL)
    print(f"model {model}; {len(records)} ESCI pairs ({len(dev)} dev / {len(test)} test, split by query); "
          f"batch size {args.batch_size}; torch threads {torch.get_num_threads()}")

    scorer.probabilities(records[:1])  # warm-up: first-call allocations are not what we measure

    # 1. raw forward: the same tokenised batches, model call only
    texts = [scoring_prompt(chat.tokenizer, r, scheme, style) for r in records]
    batches = [scorer.encode(texts[i : i + args.batch_size]) for i in range(0, len(texts), args.batch_size)]

    def raw_forward():
        with torch.inference_mode():
            for enc in batches:
                chat.model(**enc, logits_to_keep=1)

    _, raw_s = timed(raw_forward)

    # 2. answer-first scoring + CumPT (prompt rendering, tokenising, forward, softmax, tiers)
    probs, score_s = timed(lambda: scorer.probabilities(records))
    by_id = dict(zip((r.id for r in records), probs))
    fit = fit_thresholds([by_id[r.id] for r in dev], [scheme.keys.index(r.label) for r in dev])
    cumpt = CumPT(scheme.keys, fit.thresholds)
    (tiers, argmax), tier_s = timed(lambda: ([cumpt.tier(by_id[r.id]) for r in test],
                                             [scheme.keys[argmax_tier(by_id[r.id])] for r in test]))
    score_s += tier_s
    _, full_s = timed(lambda: full_scorer.probabilities(records))

    # 3. the whole response, generated on the same pairs in the run's form
    fmt = ResponseFormat(args.format)
    conversations = [build_messages(r, scheme, fmt, style) for r in records]
    generate_chat(chat, conversations[:1], max_new_tokens=4, batch_size=1)  # warm-up
    replies, generate_s = timed(lambda: generate_chat(chat, conversations, max_new_tokens=args.max_new_tokens,
                                                      batch_size=args.batch_size))
    generated = {r.id: parse_response(reply.text, scheme, fmt).label for r, reply in zip(records, replies)}

    gold = [r.label for r in test]
    f1_cumpt = compute_metrics(gold, tiers, scheme).macro_f1
    f1_argmax = compute_metrics(gold, argmax, scheme).macro_f1
    f1_generate = compute_metrics(gold, [generated[r.id] for r in test], scheme).macro_f1
    parsed = sum(label is not None for label in generated.values())
    n = len(records)
    print(f"answer-first + CumPT : {n / score_s:8.2f} pairs/s ({score_s:.1f} s; prompt: {style.instruction}, "
          f"{style.description_chars} description characters)")
    print(f"  with the full prompt: {n / full_s:8.2f} pairs/s; compact / full: {full_s / score_s:.2f}x")
    print(f"generation ({fmt})  : {n / generate_s:8.2f} pairs/s ({generate_s:.1f} s, until close, cap "
          f"{args.max_new_tokens} new tokens, {parsed}/{n} labels parsed)")
    print(f"speed-up (answer-first / generation)  : {generate_s / score_s:.1f}x"
          + ("" if parsed == n else f"  (not like for like: {n - parsed} responses never gave a label)"))
    print(f"adapter overhead (adapter / raw forward): {score_s / raw_s:.3f}x (raw forward {raw_s:.1f} s)")
    print(f"macro-F1 on {len(test)} test pairs: answer-first CumPT {f1_cumpt:.3f} (argmax {f1_argmax:.3f}); "
          f"think-then-answer {f1_generate:.3f}")
    explain_curve(scorer, cumpt, records, test, by_id, score_s, [float(m) for m in args.explain_margins.split(",")])


def explain_curve(scorer, cumpt, records, test, by_id, score_s, margins) -> None:
    """Share explained vs pairs/s, and macro-F1 of explained vs unexplained test pairs, per margin."""
    from taosr1_plugins.evaluation.metrics import compute_metrics

    scheme = scorer.scheme
    n = len(records)
    margin_of = sorted(cumpt.margin(by_id[r.id]) for r in records)
    print(f"explain: auto (reasoning only when the CumPT tier margin is below m; at most "
          f"{scorer.max_explain_tokens} tokens); margins range {margin_of[0]:.4f} to {margin_of[-1]:.4f}, "
          f"median {margin_of[len(margin_of) // 2]:.4f}:")
    print(f"  {'margin m':>9} {'explained':>10} {'pairs/s':>9} {'F1 explained (n)':>18} {'F1 unexplained (n)':>20}")
    for margin in margins:
        chosen = [r for r in records if cumpt.margin(by_id[r.id]) < margin]
        _, explain_s = timed(lambda: scorer.explain(chosen, [cumpt.tier(by_id[r.id]) for r in chosen]) if chosen else [])

        def f1(pairs) -> str:
            if not pairs:
                return f"{'-':>11} (0)"
            m = compute_metrics([r.label for r in pairs], [cumpt.tier(by_id[r.id]) for r in pairs], scheme)
            return f"{m.macro_f1:11.3f} ({len(pairs)})"

        explained = [r for r in test if cumpt.margin(by_id[r.id]) < margin]
        unexplained = [r for r in test if cumpt.margin(by_id[r.id]) >= margin]
        label = "always" if margin > 1 else f"{margin:.3f}"
        print(f"  {label:>9} {len(chosen) / n:>9.0%} {n / (score_s + explain_s):9.2f} {f1(explained):>18} "
              f"{f1(unexplained):>20}")


if __name__ == "__main__":
    main()
