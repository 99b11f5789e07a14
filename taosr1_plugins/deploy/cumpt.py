"""Cumulative-probability partitioning (CumPT): label probabilities -> a tier and a ranking score.

Levels are ordered most -> least relevant (the scheme's order). With C_k = p_1 + ... + p_k, a pair gets
the first level k whose C_k reaches its threshold t_k, else the least relevant level. Thresholds are
fitted on a labelled dev split (:func:`fit_thresholds`); the fine-grained score is the expected level,
scaled to [0, 1], so pairs can be ranked inside a tier (sort by tier first, then score).

Pure Python at import time; numpy is imported inside the fitting code only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from taosr1_plugins.deploy.temperature import Calibration

NEVER = 1.0 + 1e-6  # a threshold no cumulative probability reaches: the level is never assigned by CumPT
OBJECTIVES = ("macro_f1", "precision")


def cumulative(probs: Sequence[float]) -> list[float]:
    """C_k for every level, most relevant first (the last value is 1 up to rounding)."""
    total, out = 0.0, []
    for p in probs:
        total += p
        out.append(total)
    return out


def assign_tier(probs: Sequence[float], thresholds: Sequence[float]) -> int:
    """Index (0 = most relevant) of the first level whose cumulative probability reaches its threshold.

    ``thresholds`` has one value per level except the last, which is the fallback.
    """
    if len(thresholds) != len(probs) - 1:
        raise ValueError(f"{len(probs)} levels need {len(probs) - 1} thresholds, got {len(thresholds)}")
    for k, c in enumerate(cumulative(probs)[:-1]):
        if c >= thresholds[k]:
            return k
    return len(probs) - 1


def tier_margin(probs: Sequence[float], thresholds: Sequence[float]) -> float:
    """How far the tier is from changing: the smallest |C_k - t_k| over the comparisons the rule made.

    The rule compares C_1, C_2, ... with their thresholds until one passes; the passing one (or, for the
    fallback, the last that failed) decides, and any earlier one reaching its threshold would decide
    instead, so the nearest of them to its threshold is the margin. A level switched off (t_k = NEVER)
    cannot change the tier and is left out; with every level off the margin is 1.
    """
    tier = assign_tier(probs, thresholds)
    distances = [abs(c - t) for c, t in zip(cumulative(probs)[: tier + 1], thresholds) if t < NEVER]
    return min(distances, default=1.0)


def argmax_tier(probs: Sequence[float]) -> int:
    """The most probable level; ties go to the more relevant one."""
    return max(range(len(probs)), key=lambda i: (probs[i], -i))


def expected_score(probs: Sequence[float]) -> float:
    """Expected level scaled to [0, 1]: 1 for all mass on the top level, 0 for all on the lowest."""
    last = len(probs) - 1
    return sum(p * (last - i) for i, p in enumerate(probs)) / last


@dataclass
class CumPT:
    """Fitted thresholds for one scheme's levels (``levels`` most relevant first).

    With a ``calibration`` the thresholds were fitted on the calibrated distribution, so every method
    taking ``probs`` (the model's own distribution) calibrates first: a caller cannot forget it.
    """

    levels: list[str]
    thresholds: list[float]
    calibration: Calibration | None = None

    def calibrated(self, probs: Sequence[float]) -> list[float]:
        return self.calibration.apply(probs) if self.calibration is not None else list(probs)

    def tier_index(self, probs: Sequence[float]) -> int:
        return assign_tier(self.calibrated(probs), self.thresholds)

    def tier(self, probs: Sequence[float]) -> str:
        return self.levels[self.tier_index(probs)]

    def margin(self, probs: Sequence[float]) -> float:
        return tier_margin(self.calibrated(probs), self.thresholds)

    def read(self, probs: Sequence[float]) -> TierReading:
        """The calibrated distribution, tier and margin from one calibration: a scored pair needs all three."""
        calibrated = self.calibrated(probs)
        return TierReading(calibrated, assign_tier(calibrated, self.thresholds), tier_margin(calibrated, self.thresholds))


@dataclass(frozen=True)
class TierReading:
    calibrated: list[float]  # the distribution the thresholds apply to
    tier: int  # index into CumPT.levels
    margin: float  # tier_margin on ``calibrated``


# --- fitting -------------------------------------------------------------------------------------------


@dataclass
class FitResult:
    thresholds: list[float]
    objective: str
    value: float  # the objective's value on the dev split at ``thresholds``
    precision_targets: dict[str, float] = field(default_factory=dict)
    targets_met: dict[str, bool] = field(default_factory=dict)
    evaluations: int = 0


def _tiers_np(cum, thresholds):
    """Vectorised assign_tier over an (n, L) array of cumulative probabilities."""
    import numpy as np

    n, levels = cum.shape
    hit = cum[:, :-1] >= np.asarray(thresholds)[None, :]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), levels - 1)
    return first if n else np.zeros(0, dtype=int)


def _per_level_prf(gold, pred, n_levels):
    """Per-level precision, recall, F1 and the macro-F1 over levels present in gold or predictions.

    The search evaluates thousands of threshold settings, so it counts with numpy; the reported
    figures come from scikit-learn (evaluation.compute_metrics), and a test checks both agree.
    """
    import numpy as np

    counts = np.bincount(gold * n_levels + pred, minlength=n_levels * n_levels).reshape(n_levels, n_levels)
    tp = np.diag(counts).astype(float)
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    macro = float(f1[present].mean()) if present.any() else 0.0
    return precision, predicted, macro


def fit_thresholds(
    probs: Sequence[Sequence[float]],
    gold: Sequence[int],
    *,
    objective: str = "macro_f1",
    precision_targets: Mapping[int, float] | None = None,
    grid: int = 40,
    rounds: int = 8,
) -> FitResult:
    """Fit CumPT thresholds on labelled pairs by coordinate search over per-level candidate values.

    ``probs``: per pair, probabilities most relevant first; ``gold``: level indices (0 = most relevant).
    Objectives: ``macro_f1``; or ``precision``: meet as many per-level precision targets
    (``{level index: minimum precision}``) as possible, then maximise macro-F1 among those settings.
    Candidates for t_k are quantiles of the dev C_k values (every distinct decision boundary when the split
    is small) plus "never"; several starts (the median rule, the setting closest to argmax, "never") guard
    against a poor local optimum. The result is never below the median rule (t_k = 0.5, a start), but it
    can be below argmax: CumPT's decision regions cannot express argmax's, so the caller compares the two
    on the same split instead of assuming CumPT wins.
    """
    import numpy as np

    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    targets = dict(precision_targets or {})
    if objective == "precision" and not targets:
        raise ValueError("objective 'precision' needs per-level precision targets")
    p = np.asarray(probs, dtype=float)
    y = np.asarray(gold, dtype=int)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[0] != y.shape[0]:
        raise ValueError(f"need one probability row per gold label, got {p.shape} and {y.shape}")
    n_levels = p.shape[1]
    cum = np.cumsum(p, axis=1)

    candidates = []
    for k in range(n_levels - 1):
        values = np.unique(cum[:, k])
        if len(values) > grid:
            values = np.unique(np.quantile(cum[:, k], np.linspace(0, 1, grid)))
        candidates.append(sorted({*values.tolist(), 0.5, NEVER}))

    evaluations = 0

    def score(thresholds) -> tuple:
        nonlocal evaluations
        evaluations += 1
        pred = _tiers_np(cum, thresholds)
        precision, predicted, macro = _per_level_prf(y, pred, n_levels)
        if objective == "macro_f1":
            return (macro,)
        met = sum(1 for k, t in targets.items() if predicted[k] > 0 and precision[k] >= t)
        return (met, macro)

    argmax_pred = p.argmax(axis=1)

    def agreement(thresholds) -> float:
        return float((_tiers_np(cum, thresholds) == argmax_pred).mean())

    def ascend(start, key) -> tuple[list[float], tuple]:
        best, best_value = list(start), key(start)
        for _ in range(rounds):
            improved = False
            for k in range(n_levels - 1):
                for value in candidates[k]:
                    trial = best.copy()
                    trial[k] = value
                    trial_value = key(trial)
                    if trial_value > best_value:
                        best, best_value, improved = trial, trial_value, True
            if not improved:
                break
        return best, best_value

    starts = [[0.5] * (n_levels - 1), ascend([0.5] * (n_levels - 1), agreement)[0], [NEVER] * (n_levels - 1)]
    best, best_value = None, None
    for start in starts:
        thresholds, value = ascend(start, score)
        if best_value is None or value > best_value:
            best, best_value = thresholds, value
    assert best is not None and best_value is not None
    pred = _tiers_np(cum, best)
    precision, predicted, macro = _per_level_prf(y, pred, n_levels)
    return FitResult(
        thresholds=[float(t) for t in best],
        objective=objective,
        value=macro,
        precision_targets={str(k): float(t) for k, t in targets.items()},
        targets_met={str(k): bool(predicted[k] > 0 and precision[k] >= t) for k, t in targets.items()},
        evaluations=evaluations,
    )


def parse_precision_targets(text: str, levels: Sequence[str]) -> dict[str, float]:
    """'4=0.9,3=0.7' -> {'4': 0.9, '3': 0.7}; level keys must be the scheme's, targets in (0, 1]."""
    targets: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in levels:
            raise ValueError(f"expected LEVEL=PRECISION with LEVEL one of {', '.join(levels)}, got {part!r}")
        try:
            target = float(value)
        except ValueError:
            raise ValueError(f"precision target for level {key!r} is not a number: {value!r}") from None
        if not 0 < target <= 1:
            raise ValueError(f"precision target for level {key!r} must be in (0, 1], got {target}")
        targets[key] = target
    if not targets:
        raise ValueError("no precision targets given")
    return targets

