"""Settings of the deploy stage, declared once: the run config's `deploy:` section, `taosr1 score | calibrate |
serve` and the scoring code. Pydantic only, no ML framework."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, field_validator

from taosr1_plugins.deploy.cumpt import CumPT

EXPLAIN_MODES = ("never", "always", "auto")


class RaySettings(BaseModel):
    """Where and how wide `--executor ray` scores (deploy/ray_data/): a Ray cluster, one model replica per actor."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(None, description="Ray cluster to join (ray://host:10001, host:6379 or auto); "
                                "default: a local cluster that starts and stops with the command.")
    actors: int = Field(2, ge=1, description="Actors, each holding one model replica.")
    cpus_per_actor: float = Field(1, gt=0, description="CPUs Ray reserves per actor (torch threads inside it).")
    gpus_per_actor: float = Field(0, ge=0, description="GPUs Ray reserves per actor (1 for a vllm actor).")
    part_rows: int = Field(256, ge=1, description="Pairs per output part: the unit that is written atomically, "
                           "skipped on resume and retried when an actor dies.")


class ScoringSettings(BaseModel):
    """What the run config's `deploy:` section and the scoring code share (the CLI offers backend and batch size)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: str = Field("hf", description="Deployment adapter: hf (CPU/GPU), vllm (GPU), or a plugin's.")
    batch_size: int = Field(8, ge=1)
    executor: Literal["local", "ray"] = Field(
        "local", description="local: one process; ray: Ray Data actors on a cluster (the same rows, see "
        "docs/deployment.md).")
    ray: RaySettings = Field(default_factory=RaySettings)
    options: dict[str, Any] = Field(
        default_factory=dict, description="scoring backend options, e.g. vllm: tensor_parallel_size, gpu_memory_utilization"
    )


class CalibrationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    objective: Literal["macro_f1", "precision"] = Field(
        "macro_f1", description="macro_f1, or precision (needs --precision-targets)."
    )
    calibration: Literal["none", "temperature", "temperature_bias"] = Field(
        "temperature", description="Transform fitted by dev log-loss before the thresholds: none, temperature, or "
        "temperature_bias (per-level biases too).",
    )


class ExplainSettings(BaseModel):
    """The reasoning decoded after the label, as `taosr1 score` and `taosr1 serve` both offer it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    explain_margin: float = Field(
        0.1, ge=0, le=1, description="With --explain-mode auto: explain pairs whose tier margin is below this."
    )
    max_explain_tokens: int = Field(128, ge=1)


class ScoreSettings(ScoringSettings, ExplainSettings):
    """What a scoring job (score_records, load_scorer) runs with: the shared settings above plus what only one
    run decides. Not part of the run config: its `deploy:` section is made of ScoringSettings."""

    explain: Literal["never", "always", "auto"] = "never"  # True / False are read as always / never
    # tiers, margins and calibrated scores in the rows; needed by explain "auto". Checked as an instance
    # only: CumPT is a plain dataclass, and pydantic would otherwise rebuild it field by field.
    cumpt: InstanceOf[CumPT] | None = None
    device: str = "auto"
    overwrite: bool = False
    progress: bool = True

    @field_validator("explain", mode="before")
    @classmethod
    def _explain_flag(cls, value: Any) -> Any:
        # `--explain` and older callers pass a flag
        return {True: "always", False: "never"}.get(value, value) if isinstance(value, bool) else value
