"""The main job's YAML config (`taosr1 run CONFIG`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taosr1_plugins.evaluation.baselines import BASELINES
from taosr1_plugins.errors import DataError, data_error
from taosr1_plugins.cot.balance import Balance
from taosr1_plugins.cot.config import CotSettings
from taosr1_plugins.data.splits import SplitSettings
from taosr1_plugins.deploy.config import CalibrationSettings, ScoringSettings
from taosr1_plugins.passn.config import PairSettings, PassnRunSettings
from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.precision import Precision
from taosr1_plugins.core.prompts import PromptStyle


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    source: str = "esci"
    input: str | None = Field(None, description="raw judgement file; null = the ESCI sample shipped in the package")
    scheme: str | None = Field(None, description="label scheme name or YAML; null = the importer's own")
    limit: int | None = None


SplitSection = SplitSettings  # declared once, with the stage: its keys are the `split:` section's


class CotSection(CotSettings):
    options: dict[str, Any] = Field(default_factory=dict, description="the teacher's options")


class ModelSection(_Section):
    base: str = Field("smollm2", description="'smollm2', 'tiny', or a checkpoint path/name")


# The CPU recipe of each stage and framework, relative to the config file (as in configs/).
DEFAULT_RECIPES = {
    ("sft", "llamafactory"): "../recipes/cpu/sft_cot_smollm2.yaml",
    ("sft", "trl"): "../recipes/trl/sft_cot_smollm2.yaml",
    ("dpo", "llamafactory"): "../recipes/cpu/dpo_smollm2.yaml",
    ("dpo", "trl"): "../recipes/trl/dpo_smollm2.yaml",
}


class _TrainingSection(_Section):
    stage: ClassVar[str]
    framework: Literal["llamafactory", "trl"] = "llamafactory"
    launcher: Literal["cli", "module"] = Field(
        "cli", description="LLaMA-Factory only. cli: the patched `llamafactory-cli train`; module: our `python -m` entry point"
    )
    recipe: str | None = Field(None, description="arguments of the framework's trainer; null = its CPU recipe")
    overrides: dict[str, Any] = Field(default_factory=dict, description="trainer arguments on top of the recipe")
    precision: Precision = Field(
        "auto", description="auto: bf16 autocast where the CPU (AVX512-BF16/AMX) or GPU does bf16 natively, else fp32"
    )

    @model_validator(mode="after")
    def _default_recipe(self):
        if self.recipe is None:
            self.recipe = DEFAULT_RECIPES[(self.stage, self.framework)]
        return self


class SftSection(_TrainingSection):
    stage: ClassVar[str] = "sft"
    examples: int | None = Field(
        None, ge=1, description="training examples drawn from the CoT data (null = all); rare levels repeat if needed"
    )
    balance: Balance = Field("none", description="level shares of the examples: none (as in the data), sqrt or equal")
    label_weight: float = Field(
        1.0, gt=0, le=1000, description="framework trl, answer_first: the label token's weight in the SFT loss "
        "against the trace's tokens (1 = every token alike)",
    )

    @model_validator(mode="after")
    def _label_weight_needs_trl(self):
        if self.label_weight != 1.0 and self.framework != "trl":
            raise ValueError("label_weight needs framework: trl (LLaMA-Factory weighs every target token alike)")
        return self


class PassnSection(PassnRunSettings):
    """Stage 2 sampling from the SFT model (its difficulty file also drives stage 3)."""

    enabled: bool = True
    limit: int | None = Field(None, description="sample only the first N training prompts (CPU budgets)")
    difficulty: Literal["sampled", "one_pass"] = Field(
        "sampled",
        description="what GRPO's difficulty file holds: sampled pass@N, or the one-pass estimate from p(gold label) "
        "(answer_first only), which costs one forward pass per prompt and so covers one_pass_prompts prompts",
    )
    one_pass_prompts: int | None = Field(
        None, ge=1, description="training prompts given a one-pass estimate (null = all); answer_first runs only"
    )
    balance: Balance = Field(
        "none",
        description="level shares of the training prompts sampled (limit) and given a one-pass estimate "
        "(one_pass_prompts), and so of GRPO's prompts: none (the data's order and skew), sqrt or equal",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="backend options, e.g. vllm: tensor_parallel_size, gpu_memory_utilization, engine_args"
    )

    @model_validator(mode="after")
    def _backend_takes_options(self):
        from taosr1_plugins.pipeline.backend_options import check_generation_options

        check_generation_options(self.backend, self.options)
        return self


class DpoSection(_TrainingSection, PairSettings):
    stage: ClassVar[str] = "dpo"
    enabled: bool = True


class GrpoSection(_Section):
    """Stage 3: TRL on this machine (CPU or one GPU), or the OpenRLHF launch script on a Ray cluster of GPUs."""

    enabled: bool = True
    backend: Literal["trl", "openrlhf"] = "trl"
    recipe: str = Field("../recipes/cpu/grpo_smollm2.yaml", description="GRPO settings: reward, sampling, steps, ...")
    overrides: dict[str, Any] = Field(default_factory=dict, description="GRPO settings on top of the recipe")
    launch_script: str = Field("../recipes/openrlhf/grpo_taosr1.sh", description="backend openrlhf: the Ray job script")
    launch_env: dict[str, str] = Field(default_factory=dict, description="backend openrlhf: e.g. RAY_ADDRESS, DRY_RUN")
    python: str | None = Field(
        None, description="backend openrlhf: the OpenRLHF environment's interpreter (its own venv, see docs/gpu.md); "
        "checked before the job is submitted; null = python3 on PATH"
    )


class DeploySection(ScoringSettings, CalibrationSettings):
    """Post-CoT scoring (label probabilities in one forward pass), CumPT fitted on dev, HTML report on test."""

    enabled: bool = True
    precision_targets: dict[str, float] = Field(default_factory=dict)
    irrelevant: list[str] = Field(
        default_factory=list, description="levels counted as irrelevant for over-recall (empty: the scheme's lowest)"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="scoring backend options, e.g. vllm: tensor_parallel_size, gpu_memory_utilization"
    )

    @model_validator(mode="after")
    def _backend_takes_options(self):
        from taosr1_plugins.pipeline.backend_options import check_scoring_options

        check_scoring_options(self.backend, self.options)
        return self


class EvalSection(_Section):
    split: Literal["dev", "test"] = "test"
    limit: int | None = None
    max_new_tokens: int = 256
    batch_size: int = 8
    zero_shot_baseline: bool = Field(True, description="also evaluate the base model before SFT")


class CrossEncoderSection(_Section):
    max_train: int | None = Field(None, description="train on the first N training pairs; null = all of train")
    epochs: float = 2.0
    learning_rate: float = 1.0e-4
    batch_size: int = 32
    max_length: int = 128
    class_weighted: bool = Field(True, description="weight the loss by inverse level frequency (skewed labels)")


class BaselinesSection(_Section):
    """`taosr1 baselines CONFIG`: trained on the run's train split, scored on its test split."""

    run: list[Literal["majority", "overlap", "bm25", "cross_encoder", "zero_shot", "direct_answer"]] = Field(
        default_factory=lambda: list(BASELINES)
    )
    cross_encoder: CrossEncoderSection = Field(default_factory=CrossEncoderSection)
    direct_answer_overrides: dict[str, Any] = Field(
        default_factory=dict, description="on top of the SFT recipe and sft.overrides (same examples, no reasoning)"
    )
    batch_size: int = 8


class RunConfig(_Section):
    run_dir: str = "runs/quickstart"
    seed: int = 0
    format: ResponseFormat = ResponseFormat.THINK_ANSWER
    prompt: PromptStyle = Field(default_factory=PromptStyle, description="the student's prompt, in every stage")
    isolate_stages: bool | None = Field(
        None, description="run each model stage (SFT/DPO/GRPO with TRL, pass@N, eval, deploy) in its own process so "
        "the GPU is empty for the next; null = when CUDA is available"
    )
    data: DataSection = Field(default_factory=DataSection)
    split: SplitSection = Field(default_factory=SplitSection)
    cot: CotSection = Field(default_factory=CotSection)
    model: ModelSection = Field(default_factory=ModelSection)
    sft: SftSection = Field(default_factory=SftSection)
    passn: PassnSection = Field(default_factory=PassnSection)
    dpo: DpoSection = Field(default_factory=DpoSection)
    grpo: GrpoSection = Field(default_factory=GrpoSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    eval: EvalSection = Field(default_factory=EvalSection)
    baselines: BaselinesSection = Field(default_factory=BaselinesSection)

    # where the config file lives: relative paths inside it resolve from there
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: str | Path) -> Path:
        path = Path(path)
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(str(path), None, None, f"cannot read config: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(str(path), None, None, f"a config is a mapping of sections, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DataError(str(path), None, ".".join(parents[: depth + 1]), f"is not a section; cannot --set {dotted}")
        node[leaf] = value
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise data_error(exc, str(path)) from exc
    config.base_dir = path.resolve().parent
    return config
