"""Reliability of a level distribution: equal-width confidence bins and the expected calibration error.

Confidence is the largest p(level) of a pair, and a pair is correct when that level is its gold one.
Pure Python: the report and `taosr1 calibrate` both call it on a few thousand pairs.
"""

from __future__ import annotations

from collections.abc import Sequence


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per equal-width confidence bin that has pairs."""
    out = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        index = [i for i, c in enumerate(confidence) if low <= c < high or (b == bins - 1 and c == 1.0)]
        if index:
            out.append((sum(confidence[i] for i in index) / len(index),
                        sum(correct[i] for i in index) / len(index), len(index)))
    return out


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    n = len(confidence)
    return sum(count / n * abs(acc - conf) for conf, acc, count in reliability_bins(confidence, correct, bins))


def confidence_and_correct(probs: Sequence[Sequence[float]], gold: Sequence[int]) -> tuple[list[float], list[bool]]:
    """Per pair, the top probability and whether its level (ties: the more relevant) is gold."""
    from taosr1_plugins.deploy.cumpt import argmax_tier

    return [max(p) for p in probs], [argmax_tier(p) == g for p, g in zip(probs, gold)]


def ece_of(probs: Sequence[Sequence[float]], gold: Sequence[int], bins: int = 10) -> float:
    return expected_calibration_error(*confidence_and_correct(probs, gold), bins=bins)
