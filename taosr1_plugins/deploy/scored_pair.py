"""One scored (query, item) pair, built once from the model's level distribution: what `taosr1 score` writes
to a row of scores.jsonl and `taosr1 serve` returns in a result, so both doors give the same answer.

- ``probs``: the model's own distribution (raw), so a score file can be calibrated and evaluated again
  without applying a transform twice;
- ``label``: the argmax of ``probs``, the model's own choice;
- ``tier``, ``score`` and ``margin``: read from the calibrated distribution (the one the CumPT thresholds
  were fitted on). ``tier`` is the served decision (the argmax label without thresholds), ``score`` the
  expected level scaled to [0, 1] that ranks pairs inside a tier, ``margin`` the tier's distance from
  changing (cumpt.tier_margin; only with thresholds).

The distribution is calibrated once per pair (CumPT.read). Pure Python, no ML framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.deploy.cumpt import CumPT, argmax_tier, expected_score

DECIMALS = 6  # what both outputs keep: far below any difference a model or a threshold can make


@dataclass(frozen=True)
class ScoredPair:
    """Exact values (the explain policy compares the margin before any rounding); ``fields`` is what is output."""

    probs: dict[str, float]  # raw, level -> p, most relevant level first
    label: str
    tier: str
    score: float
    margin: float | None = None  # None: no thresholds, so no margin

    def fields(self) -> dict[str, Any]:
        """The scored-pair fields of a score row and of a server result, in that order, rounded alike."""
        out: dict[str, Any] = {
            "probs": {key: round(p, DECIMALS) for key, p in self.probs.items()},
            "label": self.label,
            "tier": self.tier,
            "score": round(self.score, DECIMALS),
        }
        if self.margin is not None:
            out["margin"] = round(self.margin, DECIMALS)
        return out


def score_pair(probs: Sequence[float], scheme: LabelScheme, cumpt: CumPT | None = None) -> ScoredPair:
    """``probs``: the model's p(level) in scheme order; ``cumpt``: thresholds (and calibration) for the tier.

    Everything is read from the probabilities as a score file stores them (rounded to ``DECIMALS``): that is
    what `calibrate` fits the thresholds on and `eval` reads, so a pair lying on a threshold gets one tier from
    fit, score, eval and serve alike (from the exact ones it could fall just below the threshold it defines)."""
    probs = [round(p, DECIMALS) for p in probs]
    label = scheme.keys[argmax_tier(probs)]
    if cumpt is None:
        return ScoredPair(dict(zip(scheme.keys, probs)), label, label, _score(probs))
    reading = cumpt.read(probs)
    return ScoredPair(dict(zip(scheme.keys, probs)), label, cumpt.levels[reading.tier], _score(reading.calibrated),
                      reading.margin)


def _score(probs: Sequence[float]) -> float:
    # the expected level of probabilities that sum to 1 only up to float error may stray past [0, 1]
    return min(1.0, max(0.0, expected_score(probs)))
