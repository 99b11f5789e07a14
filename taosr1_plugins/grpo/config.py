"""Settings of the GRPO stage (YAML-loadable), shared by the CLI, the pipeline and the TRL backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.grpo.dynamic_sampling import DynamicSamplingSettings
from taosr1_plugins.grpo.reward import RewardSettings
from taosr1_plugins.grpo.difficulty_mix import DifficultyMix
from taosr1_plugins.core import yaml_load


# The TRL route's trainer arguments, which the GRPO settings carry for `taosr1 grpo train` and `grpo.framework: trl`;
# a framework with a trainer configuration of its own (OpenRLHF: its launch script) refuses them, not ignores them.
TRL_TRAINER_ARGUMENTS = ("steps", "prompts_per_step", "num_generations", "temperature", "learning_rate", "beta", "seed",
                         "dynamic_sampling", "extra_trl_args", "rollouts", "accuracy_range", "trainable_layers")


class GrpoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    format: ResponseFormat = ResponseFormat.THINK_ANSWER
    reward: RewardSettings = Field(default_factory=RewardSettings)
    sampler: str = Field("difficulty", description="prompt-sampler plugin: difficulty or uniform")
    sampling: DifficultyMix = Field(default_factory=DifficultyMix)
    dynamic_sampling: DynamicSamplingSettings = Field(default_factory=DynamicSamplingSettings)

    steps: int = Field(3, ge=1, description="optimizer steps")
    prompts_per_step: int = Field(2, ge=1)
    num_generations: int = Field(4, ge=2, description="group size G")
    max_prompt_length: int | None = 768
    max_completion_length: int = Field(96, ge=1)
    temperature: float = Field(1.0, gt=0)
    learning_rate: float = 1e-6
    beta: float = Field(0.04, ge=0, description="KL coefficient (TRL uses the k3 estimator, as OpenRLHF's --algo.kl.estimator k3)")
    seed: int = 0
    guided_replay: bool = Field(
        False,
        description="TRL backend: in a group whose rollouts are all wrong, the last rollout is replaced by the gold "
        "response (the record's reasoning and label), TaoSR-AGRL's adaptive guided replay",
    )
    rollouts: Literal["sampled", "expected"] = Field(
        "sampled",
        description="sampled: num_generations rollouts per prompt (TRL's GRPOTrainer); expected (answer_first only): "
        "no rollouts, the exact expected reward over the level distribution at the answer position, from one forward "
        "pass per prompt (GRPO's label gradient as the group grows without bound: no sampling variance, no generation)",
    )
    accuracy_range: tuple[float, float] = Field(
        (0.01, 0.9),
        description="rollouts: expected, with dynamic_sampling enabled: a prompt counts only while the policy's "
        "p(gold) lies in this range (the exact form of keeping groups whose accuracy lies in it)",
    )
    trainable_layers: int | None = Field(
        None, ge=1, description="train only the last N decoder layers (as the SFT recipes' freeze_trainable_layers); null: all"
    )
    extra_trl_args: dict[str, Any] = Field(
        default_factory=dict,
        description="passed through to trl.GRPOConfig (rollouts: expected, to transformers.TrainingArguments)",
    )

    @model_validator(mode="after")
    def _reward_checks_the_trained_format(self) -> GrpoSettings:
        # The prompts ask for `format`; a reward still checking the other order would score every
        # well-formed answer as malformed (all rewards 0, every group filtered).
        if "format" not in self.reward.model_fields_set:
            self.reward = self.reward.model_copy(update={"format": self.format})
        if self.rollouts == "expected" and self.format is not ResponseFormat.ANSWER_FIRST:
            raise ValueError("rollouts: expected reads the label at the answer position: it needs format answer_first")
        low, high = self.accuracy_range
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"accuracy_range must be two shares with low < high, got {list(self.accuracy_range)}")
        return self


def load_grpo_settings(path: str | Path | None = None, **overrides: Any) -> GrpoSettings:
    data: dict[str, Any] = {}
    if path is not None:
        data = yaml_load.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return GrpoSettings.model_validate({**data, **{k: v for k, v in overrides.items() if v is not None}})
