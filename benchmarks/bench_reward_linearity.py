"""Reward time against response length for hostile policy output (repeated opening tags).

    .venv/bin/python benchmarks/bench_reward_linearity.py [--size 100000]

Scores each adversarial response at SIZE and 10 x SIZE characters (and strips end tokens, as the
OpenRLHF and verl adapters do first) and prints the time ratio: about 10 means linear time; the
lazy-regex parser this replaced gave about 100 (13.6 s at 100 KB, over 60 s at 1 MB), as did the
end-token strip that cut the string once per token. Absolute times depend on the machine; the ratio
does not.
"""

from __future__ import annotations

import argparse
import time

from taosr1_plugins.grpo.reward import RelevanceReward, strip_trailing_special_tokens

SHAPES = {
    "<answer>*N": "<answer>",
    "<think>*N": "<think>",
    "<think><answer>*N": "<think><answer>",
    "closed then open": "<answer>E</answer><think><think>",
}


# What the OpenRLHF and verl adapters strip before scoring: end tokens a policy can emit forever.
END_TOKENS = {"</s>*N (end-token strip)": "</s>", "<|im_end|>*N (end-token strip)": "<|im_end|>"}


def seconds(run, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000, help="characters of the shorter response")
    size = parser.parse_args().size
    reward = RelevanceReward()
    print(f"{'response':<32} {size:>10,} chars {10 * size:>12,} chars   ratio (10 = linear)")
    cases = [(name, unit, lambda text: reward.score(text, "E")) for name, unit in SHAPES.items()]
    cases += [(name, unit, strip_trailing_special_tokens) for name, unit in END_TOKENS.items()]
    for name, unit, run in cases:
        short = unit * (size // len(unit))
        long = unit * (10 * size // len(unit))
        t_short, t_long = seconds(run, short), seconds(run, long)
        print(f"{name:<32} {t_short * 1e3:>13.2f} ms {t_long * 1e3:>12.2f} ms   {t_long / max(t_short, 1e-9):6.1f}")


if __name__ == "__main__":
    main()
