"""Difficulty in one forward pass: pass@k from the gold label's probability at the answer position.

In the answer-first form the label is the first thing a response decodes, so the probability p of the
gold label's token right after ``<answer>``, under the softmax at the sampling temperature, is exactly the
chance that one sampled response names the gold label, and 1 - (1 - p)^k its pass@k. One forward pass per
prompt replaces k sampled responses of up to hundreds of tokens. (A sampled response can still fail on
format after a right label; after SFT that is rare, and sampled pass@N counts it.)

The row it writes is a :class:`DifficultyRow` whose ``correct`` is the most likely number of right answers
among ``n`` samples (the mode of Binomial(n, p)), so the GRPO sampler buckets it as it would bucket n
samples, and ``pass_rate`` is p itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from taosr1_plugins.passn.difficulty import DifficultyThresholds, DifficultyRow
from taosr1_plugins.core.records import Record


def pass_at_k(p: float, k: int) -> float:
    return 1.0 - (1.0 - p) ** k


def one_pass_row(record: Record, p: float, levels: Sequence[str], probs: Sequence[float], n: int,
                 thresholds: DifficultyThresholds | None = None) -> DifficultyRow:
    thresholds = thresholds or DifficultyThresholds()
    p = min(max(p, 0.0), 1.0)
    correct = min(n, math.floor((n + 1) * p))  # the mode of Binomial(n, p)
    return DifficultyRow(
        id=record.id, gold=record.label, n=n, correct=correct, pass_rate=p,
        format_ok_rate=min(1.0, sum(probs)),  # the chance that a level token comes first at all
        majority=levels[max(range(len(probs)), key=probs.__getitem__)],
        bucket=thresholds.bucket(correct, n), thresholds=thresholds,
    )


def one_pass_difficulty(scorer: Any, records: Sequence[Record], n: int, temperature: float,
                        thresholds: DifficultyThresholds | None = None) -> list[DifficultyRow]:
    """Difficulty rows for labelled ``records`` from a scorer with ``sampling_probabilities`` (the hf scorer)."""
    if temperature <= 0:
        raise ValueError("one-pass difficulty needs a sampling temperature > 0 (greedy decoding has no pass@k)")
    keys = scorer.scheme.keys
    labelled = [r for r in records if r.label is not None]
    probs = scorer.sampling_probabilities(labelled, temperature)
    return [one_pass_row(r, row[keys.index(r.label)], keys, row, n, thresholds) for r, row in zip(labelled, probs)]


def agreement(sampled: Sequence[DifficultyRow], one_pass: Sequence[DifficultyRow]) -> dict[str, Any]:
    """How well the one-pass estimate agrees with sampled pass@N on the prompts both cover."""
    from scipy.stats import spearmanr

    by_id = {row.id: row for row in one_pass}
    pairs = [(s, by_id[s.id]) for s in sampled if s.id in by_id]
    if not pairs:
        return {"prompts": 0}
    n = pairs[0][0].n
    sampled_rate = [s.pass_rate for s, _ in pairs]
    estimated = [o.pass_rate for _, o in pairs]
    sampled_any = [float(s.correct > 0) for s, _ in pairs]
    result = {
        "prompts": len(pairs),
        "n": n,
        "mean_pass1_sampled": round(sum(sampled_rate) / len(pairs), 4),
        "mean_pass1_one_pass": round(sum(estimated) / len(pairs), 4),
        f"mean_pass@{n}_sampled": round(sum(sampled_any) / len(pairs), 4),
        f"mean_pass@{n}_one_pass": round(sum(pass_at_k(p, n) for p in estimated) / len(pairs), 4),
        "mean_abs_diff_pass1": round(sum(abs(a - b) for a, b in zip(sampled_rate, estimated)) / len(pairs), 4),
        "bucket_agreement": round(sum(s.bucket == o.bucket for s, o in pairs) / len(pairs), 4),
        "buckets_sampled": dict(sorted(Counter(str(s.bucket) for s, _ in pairs).items())),
        "buckets_one_pass": dict(sorted(Counter(str(o.bucket) for _, o in pairs).items())),
    }
    if len(set(sampled_rate)) > 1 and len(set(estimated)) > 1:
        result["spearman_pass1"] = round(float(spearmanr(sampled_rate, estimated).statistic), 4)
    return result
