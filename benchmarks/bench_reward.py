"""Relevance reward throughput on one core, against a bare regex match measured in the same run.

    .venv/bin/python benchmarks/bench_reward.py [--n 20000]

Prints responses/second for the reward and for the baseline (one ``ANSWER_RE.search`` per response, the
least any label reward must do), and their ratio. Absolute numbers depend on the machine; the ratio
says what the parsing, format checks and label resolution cost on top of finding the answer tag.
"""

from __future__ import annotations

import argparse
import random
import time

from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.formats import ANSWER_RE, render_response
from taosr1_plugins.grpo.reward import RelevanceReward, RewardSettings

REASONING = (
    "The query asks for {q}. The item is {t}. Product type: matches. Brand: the query names none. "
    "Attributes: size and colour are stated in the title and agree with the query. Negations: none. "
    "Comparing point by point, the item satisfies the query's explicit constraints."
)


def responses(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    keys = ESCI.keys
    out = []
    for i in range(n):
        gold = rng.choice(keys)
        kind = i % 4
        reasoning = REASONING.format(q=f"query {i}", t=f"item {i}") * rng.randint(1, 3)
        if kind == 0:  # right
            text = render_response(reasoning, gold, ESCI, "think_answer")
        elif kind == 1:  # wrong level
            text = render_response(reasoning, rng.choice([k for k in keys if k != gold]), ESCI, "think_answer")
        elif kind == 2:  # truncated: no answer tag
            text = "<think>\n" + reasoning[: rng.randint(10, len(reasoning))]
        else:  # malformed: answer outside the scheme, text after the tags
            text = f"<think>{reasoning}</think><answer>maybe</answer> trailing"
        out.append((text, {"gold": gold, "scheme": "esci"}))
    return out


def rate(fn, items, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text, label in items:
            fn(text, label)
        best = min(best, time.perf_counter() - started)
    return len(items) / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    items = responses(args.n)
    reward = RelevanceReward(RewardSettings(partial_credit=(0.3,)))
    reward.score(*items[0])  # warm the scheme lookup

    baseline = rate(lambda text, label: ANSWER_RE.search(text), items)
    ours = rate(reward.score, items)
    print(f"responses: {len(items)} (mean {sum(len(t) for t, _ in items) / len(items):.0f} chars), one core")
    print(f"baseline  ANSWER_RE.search : {baseline:12,.0f} responses/s")
    print(f"reward    RelevanceReward  : {ours:12,.0f} responses/s")
    print(f"ratio     reward / baseline: {ours / baseline:12.3f}  ({baseline / ours:.1f}x the cost of a bare regex match)")


if __name__ == "__main__":
    main()
