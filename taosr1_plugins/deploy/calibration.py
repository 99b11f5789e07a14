"""`taosr1 calibrate`: fit CumPT thresholds on a labelled dev split and compare with argmax there.

The output (cumpt.json) records the thresholds, the split they were fitted on (file, size, sha256), the
objective and the value reached, and the same metrics for argmax on the same pairs, so whoever deploys
the thresholds sees what they buy over the plain most-probable level.

Optionally a temperature (and per-level biases) is fitted first, by dev log-loss (temperature.py), and
the thresholds are fitted on the calibrated distribution; the ``calibration`` block then holds the
transform, the log-loss and ECE before and after, and the thresholds and macro-F1 CumPT reaches on
the uncalibrated distribution. A cumpt.json without that block (written before calibration existed,
or with ``--calibration none``) means the identity, so old files keep their meaning.
"""

from __future__ import annotations

import math
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taosr1_plugins.deploy.cumpt import NEVER, CumPT, argmax_tier, fit_thresholds
from taosr1_plugins.deploy.temperature import BIAS_BOUND, TEMPERATURE_BOUNDS, Calibration
from taosr1_plugins.errors import DataError, data_error
from taosr1_plugins.evaluation.metrics import Metrics, compute_metrics
from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.core.digest import file_sha256
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import ScoreSet, read_scores

SCORE_DESCRIPTION = "expected level scaled to [0, 1] (1: all mass on the most relevant level); rank by (tier, score)"


def _check_thresholds(thresholds: Mapping[str, float], levels: list[str]) -> None:
    if set(thresholds) != set(levels[:-1]):
        raise ValueError(f"thresholds must be given for levels {levels[:-1]}, got {sorted(thresholds)}")
    for key, value in thresholds.items():
        # cumulative probabilities lie in [0, 1]; NEVER (just above 1) switches a level off
        if not 0 <= value <= NEVER:  # also false for NaN
            raise ValueError(f"threshold of level {key!r} must be a cumulative probability in [0, 1], got {value}")


def _check_finite(transform: Calibration, levels: int) -> None:
    """The transform on the extremes a model can give (all mass on one level, below the stored precision
    elsewhere; uniform) must be a distribution: the bounds guarantee it, this proves it for the file at hand."""
    probes = [[1.0 if i == k else 0.0 for i in range(levels)] for k in range(levels)] + [[1 / levels] * levels]
    for probe in probes:
        out = transform.apply(probe)
        if not all(math.isfinite(p) for p in out) or abs(sum(out) - 1) > 1e-6:
            raise ValueError(f"the calibration turns {probe} into {out}, not a distribution")


class CalibrationBlock(BaseModel):
    """The transform applied before the thresholds (the rest is a record of the fit)."""

    model_config = ConfigDict(extra="allow")

    method: Literal["none", "temperature", "temperature_bias"]  # temperature.METHODS
    # the range the fit searches: a temperature of 5e-324 passes "> 0" and makes every calibrated p NaN
    temperature: float = Field(ge=TEMPERATURE_BOUNDS[0], le=TEMPERATURE_BOUNDS[1], allow_inf_nan=False)
    biases: dict[str, Annotated[float, Field(ge=-BIAS_BOUND, le=BIAS_BOUND, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="per level; empty: none"
    )
    uncalibrated_thresholds: dict[str, float] | None = None


class CumptFile(BaseModel):
    """What cumpt.json must hold for scoring and serving (the rest is a record of the fit)."""

    model_config = ConfigDict(extra="allow")

    scheme: str
    scheme_file: str | None = Field(None, description="the YAML file of a scheme that is not registered")
    levels: list[str] = Field(min_length=2, description="most relevant first")
    thresholds: dict[str, float]
    calibration: CalibrationBlock | None = None

    @model_validator(mode="after")
    def _check(self) -> CumptFile:
        _check_thresholds(self.thresholds, self.levels)
        block = self.calibration
        if block is not None:
            if block.biases and set(block.biases) != set(self.levels):
                raise ValueError(f"calibration biases must be given for levels {self.levels}, got {sorted(block.biases)}")
            if block.uncalibrated_thresholds is not None:
                _check_thresholds(block.uncalibrated_thresholds, self.levels)
            _check_finite(self.transform, len(self.levels))
        return self

    @property
    def transform(self) -> Calibration | None:
        block = self.calibration
        if block is None:
            return None
        return Calibration(block.temperature, [block.biases[key] for key in self.levels] if block.biases else [])

    def to_cumpt(self) -> CumPT:
        return CumPT(list(self.levels), [self.thresholds[key] for key in self.levels[:-1]], self.transform)

    def uncalibrated_cumpt(self) -> CumPT | None:
        """CumPT fitted on the raw distribution, kept to show what calibration buys; None if not recorded."""
        block = self.calibration
        if block is None or block.uncalibrated_thresholds is None:
            return None
        return CumPT(list(self.levels), [block.uncalibrated_thresholds[key] for key in self.levels[:-1]])


def load_cumpt(path: str | Path) -> CumptFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(str(path), None, None, f"cannot read CumPT file: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataError(str(path), exc.lineno, None, f"invalid JSON: {exc.msg}") from exc
    try:
        found = CumptFile.model_validate(data)
    except ValidationError as exc:
        raise data_error(exc, str(path)) from exc
    scheme = get_scheme(found.scheme, found.scheme_file)
    if found.levels != scheme.keys:
        raise DataError(str(path), None, "levels", f"{found.levels} are not scheme {scheme.name!r}'s levels {scheme.keys}")
    return found


def _summary(metrics: Metrics) -> dict[str, Any]:
    return {
        "macro_f1": metrics.macro_f1,
        "accuracy": metrics.accuracy,
        "qwk": metrics.qwk,
        "per_level": metrics.per_level,
    }


def fit_cumpt(
    scores: ScoreSet | str | Path,
    *,
    objective: str = "macro_f1",
    precision_targets: Mapping[str, float] | None = None,
    split: str = "dev",
    calibration: str = "none",
) -> dict[str, Any]:
    """Fit thresholds on the labelled rows of ``scores``; returns the cumpt.json content.

    ``calibration``: none, temperature or temperature_bias (temperature.METHODS), fitted first by dev
    log-loss; the thresholds are then fitted on the calibrated distribution.
    """
    from taosr1_plugins.evaluation.reliability import ece_of
    from taosr1_plugins.deploy.temperature import fit_calibration

    scores = scores if isinstance(scores, ScoreSet) else read_scores(scores, require_gold=True)
    scheme = scores.scheme
    rows = scores.labelled
    if not rows:
        raise DataError(str(scores.path), None, "gold", "no labelled rows to calibrate on")
    raw = [[row.probs[key] for key in scheme.keys] for row in rows]
    gold = [row.gold for row in rows]
    gold_index = [scheme.keys.index(g) for g in gold]
    targets = {scheme.keys.index(key): value for key, value in (precision_targets or {}).items()}
    transform = fit_calibration(raw, gold_index, calibration)
    probs = [transform.calibration.apply(p) for p in raw] if calibration != "none" else raw
    fit = fit_thresholds(probs, gold_index, objective=objective, precision_targets=targets)
    cumpt = CumPT(scheme.keys, fit.thresholds)
    calibrated = compute_metrics(gold, [cumpt.tier(p) for p in probs], scheme)
    argmax = compute_metrics(gold, [scheme.keys[argmax_tier(p)] for p in raw], scheme)  # the model's own
    block = None
    if calibration != "none":
        uncalibrated_fit = fit_thresholds(raw, gold_index, objective=objective, precision_targets=targets)
        uncalibrated = compute_metrics(gold, [CumPT(scheme.keys, uncalibrated_fit.thresholds).tier(p) for p in raw], scheme)
        cal = transform.calibration
        block = {
            "method": calibration,
            "temperature": cal.temperature,
            "temperature_at_bound": transform.at_bound,
            "biases": dict(zip(scheme.keys, cal.biases)) if cal.biases else {},
            "rule": "p' = softmax(log p / temperature + biases), then the thresholds",
            "chosen_by": "dev log-loss",
            "log_loss": {"before": transform.log_loss_before, "after": transform.log_loss_after},
            "ece": {"before": ece_of(raw, gold_index), "after": ece_of(probs, gold_index)},
            "uncalibrated_thresholds": dict(zip(scheme.keys[:-1], uncalibrated_fit.thresholds)),
            "uncalibrated_cumpt": _summary(uncalibrated),
            "macro_f1_gain_over_uncalibrated": calibrated.macro_f1 - uncalibrated.macro_f1,
        }
    return {
        "scheme": scheme.name,
        **({"scheme_file": scheme.file} if scheme.file else {}),  # score and serve read the scheme from it
        "levels": scheme.keys,
        "thresholds": dict(zip(scheme.keys[:-1], fit.thresholds)),
        "fallback": scheme.keys[-1],
        "rule": "walk levels most->least relevant; first level whose cumulative probability >= its threshold, "
        "else the fallback",
        "score": SCORE_DESCRIPTION,
        "objective": objective,
        "precision_targets": {scheme.keys[int(k)]: v for k, v in fit.precision_targets.items()},
        "targets_met": {scheme.keys[int(k)]: v for k, v in fit.targets_met.items()},
        "value": calibrated.macro_f1,
        "split": {"name": split, "file": str(scores.path), "n": len(rows), "sha256": file_sha256(scores.path)},
        "cumpt": _summary(calibrated),
        "argmax": _summary(argmax),
        "macro_f1_gain_over_argmax": calibrated.macro_f1 - argmax.macro_f1,
        "search_evaluations": fit.evaluations,
        **({"calibration": block} if block is not None else {}),
    }


def write_cumpt(result: Mapping[str, Any], out: str | Path) -> Path:
    out = Path(out)
    with atomic_write(out) as fh:
        fh.write(json.dumps(result, indent=2) + "\n")
    return out
