"""Settings of the deploy stage, declared once: the run config's `deploy:` section, `taosr1 score | calibrate`
and the scoring code. Pydantic only, no ML framework."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = Field("hf", description="Deployment adapter: hf (CPU/GPU), vllm (GPU), or a plugin's.")
    batch_size: int = Field(8, ge=1)


class CalibrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objective: Literal["macro_f1", "precision"] = Field(
        "macro_f1", description="macro_f1, or precision (needs --precision-targets)."
    )
    calibration: Literal["none", "temperature", "temperature_bias"] = Field(
        "temperature", description="Transform fitted by dev log-loss before the thresholds: none, temperature, or "
        "temperature_bias (per-level biases too).",
    )


class ExplainSettings(BaseModel):
    """The reasoning decoded after the label, as `taosr1 score` and `taosr1 serve` both offer it."""

    model_config = ConfigDict(extra="forbid")

    explain_margin: float = Field(
        0.1, ge=0, le=1, description="With --explain-mode auto: explain pairs whose tier margin is below this."
    )
    max_explain_tokens: int = Field(128, ge=1)
