"""Calibrating the level distribution before CumPT: temperature scaling, optionally with per-level biases.

Score files hold p(level), the softmax over the verbalizer logits. log p equals those logits minus a
per-pair constant, which a softmax ignores, so softmax(log p / T + b) is exactly temperature (and bias)
scaling of the level logits: the transform can be fitted and applied to score files and served
probabilities alike, with no second forward pass.

Fitted on labelled dev pairs by minimising the log-loss. With beta = 1/T the log-loss is convex in
(beta, b) (a linear function inside a log-softmax), so the bounded quasi-Newton search finds the global
minimum and the result does not depend on a starting guess. Pure Python at import time; numpy and
scipy are imported inside the fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

METHODS = ("none", "temperature", "temperature_bias")
# Stored probabilities are rounded to 6 decimals, so a 0 means "below 5e-7"; its log must stay finite.
PROB_FLOOR = 1e-7
BETA_BOUNDS = (0.05, 20.0)  # T between 0.05 and 20: beyond that a fit says more about the dev split than the model
TEMPERATURE_BOUNDS = (1 / BETA_BOUNDS[1], 1 / BETA_BOUNDS[0])  # what a cumpt.json may hold: what a fit can give
BIAS_BOUND = 20.0


@dataclass
class Calibration:
    """softmax(log p / temperature + biases); biases most relevant level first, the last one 0."""

    temperature: float = 1.0
    biases: list[float] = field(default_factory=list)  # empty: no biases

    def apply(self, probs: Sequence[float]) -> list[float]:
        biases = self.biases or [0.0] * len(probs)
        z = [math.log(max(p, PROB_FLOOR)) / self.temperature + b for p, b in zip(probs, biases)]
        top = max(z)
        weights = [math.exp(x - top) for x in z]
        total = sum(weights)
        return [w / total for w in weights]

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1.0 and not any(self.biases)


@dataclass
class CalibrationFit:
    calibration: Calibration
    method: str
    log_loss_before: float
    log_loss_after: float
    at_bound: bool = False  # the temperature stopped at BETA_BOUNDS: the model's own ranking of levels says little



def log_loss(probs: Sequence[Sequence[float]], gold: Sequence[int]) -> float:
    """Mean negative log-probability of the gold level (scikit-learn's log_loss, with our floor)."""
    from sklearn.metrics import log_loss as sk_log_loss

    levels = len(probs[0])
    clipped = [[max(p, PROB_FLOOR) for p in row] for row in probs]
    # rounded rows sum to 1 only within 1e-6; scikit-learn warns unless they do exactly
    clipped = [[p / sum(row) for p in row] for row in clipped]
    return float(sk_log_loss(list(gold), clipped, labels=list(range(levels))))


def fit_calibration(probs: Sequence[Sequence[float]], gold: Sequence[int], method: str = "temperature") -> CalibrationFit:
    """Fit ``method`` on (probabilities most relevant first, gold level index) pairs by dev log-loss."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    if method not in METHODS:
        raise ValueError(f"unknown calibration {method!r}; choose one of {', '.join(METHODS)}")
    p = np.asarray(probs, dtype=float)
    y = np.asarray(gold, dtype=int)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[0] != y.shape[0]:
        raise ValueError(f"need one probability row per gold label, got {p.shape} and {y.shape}")
    before = log_loss(p.tolist(), y.tolist())
    if method == "none":
        return CalibrationFit(Calibration(), method, before, before)
    n, levels = p.shape
    logp = np.log(np.clip(p, PROB_FLOOR, 1.0))
    rows = np.arange(n)
    with_bias = method == "temperature_bias"

    def unpack(x):
        biases = np.append(x[1:], 0.0) if with_bias else np.zeros(levels)
        return x[0], biases

    def loss_and_grad(x):
        beta, biases = unpack(x)
        logq = log_softmax(logp * beta + biases[None, :], axis=1)
        q = np.exp(logq)
        onehot = np.zeros_like(q)
        onehot[rows, y] = 1.0
        residual = (q - onehot) / n  # d loss / d z
        grad = [float((residual * logp).sum())]
        if with_bias:
            grad += residual.sum(axis=0)[:-1].tolist()
        return float(-logq[rows, y].mean()), np.asarray(grad)

    x0 = np.zeros(1 + (levels - 1 if with_bias else 0))
    x0[0] = 1.0
    bounds = [BETA_BOUNDS] + [(-BIAS_BOUND, BIAS_BOUND)] * (len(x0) - 1)
    result = minimize(loss_and_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    beta, biases = unpack(result.x)
    calibration = Calibration(temperature=float(1.0 / beta), biases=[float(b) for b in biases] if with_bias else [])
    after = log_loss([calibration.apply(row) for row in p.tolist()], y.tolist())
    if after > before:  # the identity is feasible (beta 1, biases 0); never hand back something worse than it
        return CalibrationFit(Calibration(), method, before, before)
    at_bound = bool(np.isclose(beta, BETA_BOUNDS[0]) or np.isclose(beta, BETA_BOUNDS[1]))
    return CalibrationFit(calibration, method, before, after, at_bound)
