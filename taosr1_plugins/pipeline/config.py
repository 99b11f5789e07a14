"""The main job's YAML config (`taosr1 run CONFIG`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taosr1_plugins.evaluation.baselines import BASELINES, BaselineName
from taosr1_plugins.evaluation.baselines.cross_encoder import CrossEncoderSettings
from taosr1_plugins.errors import DataError, first_problem
from taosr1_plugins.core.options import OptionError
from taosr1_plugins.cot.balance import Balance
from taosr1_plugins.cot.config import CotSettings
from taosr1_plugins.data.columns import ImportOptions
from taosr1_plugins.data.splits import SplitSettings
from taosr1_plugins.deploy.config import CalibrationSettings, ScoringSettings
from taosr1_plugins.passn.config import PairSettings, PassnRunSettings
from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.precision import Precision
from taosr1_plugins.core.prompts import PromptStyle
from taosr1_plugins.shipped import shipped_path
from taosr1_plugins.core import yaml_load


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a NaN or inf setting poisons every number after it


class DataSection(ImportOptions):
    """What `taosr1 data import` is told on the command line; map, labels and delimiter are its ImportOptions."""

    source: str = "esci"
    input: str | None = Field(None, description="raw judgement file; null = the ESCI sample shipped in the package")
    scheme: str | None = Field(None, description="label scheme name or YAML file (relative to the config, like "
                               "input); null = the importer's own")
    limit: int | None = Field(None, ge=1, description="import only the first N pairs (null = all)")


SplitSection = SplitSettings  # declared once, with the stage: its keys are the `split:` section's


class CotSection(CotSettings):
    options: dict[str, Any] = Field(default_factory=dict, description="the teacher's options")

    @model_validator(mode="after")
    def _teacher_takes_options(self):
        from taosr1_plugins.core.options import check_options

        # by the teacher's own options model (pydantic only); an unknown name is preflight's
        check_options("teacher", self.teacher, self.options, if_registered=True)
        return self


class ModelSection(_Section):
    base: str = Field("smollm2", description="a built-in model ('smollm2', 'tiny'), a checkpoint folder or a Hub id")


# The CPU recipe of each stage and built-in framework, relative to the config file (as in configs/); from a config
# in any other folder they name the package's own copy (RunConfig.resolve).
DEFAULT_RECIPES = {
    ("sft", "llamafactory"): "../recipes/llamafactory/sft_cot_smollm2.yaml",
    ("sft", "trl"): "../recipes/trl/sft_cot_smollm2.yaml",
    ("dpo", "llamafactory"): "../recipes/llamafactory/dpo_smollm2.yaml",
    ("dpo", "trl"): "../recipes/trl/dpo_smollm2.yaml",
}
# keys a training section had before every framework option moved under `options` (issue 26)
RENAMED_KEYS = {"backend": "framework", "launcher": "options.launcher", "launch_script": "options.launch_script",
                "launch_env": "options.launch_env", "python": "options.python"}


class _FrameworkSection(_Section):
    """What every training stage's section has: the framework that trains it (a registered training backend,
    `taosr1 plugins` lists them), trainer arguments on top of its recipe, and the framework's own options, which
    its backend validates before the first stage runs (docs/plugins.md lists each built-in's)."""

    stage: ClassVar[str]
    framework: str = "llamafactory"
    overrides: dict[str, Any] = Field(default_factory=dict, description="trainer arguments on top of the recipe")
    options: dict[str, Any] = Field(
        default_factory=dict, description="the framework's options: llamafactory: launcher (cli | module); "
        "openrlhf: launch_script, launch_env, python; trl: none"
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in RENAMED_KEYS.items():
                if old in data:
                    raise ValueError(f"'{old}' is now '{new}' (every framework option lives under options:)")
        return data


class _TrainingSection(_FrameworkSection):
    recipe: str | None = Field(None, description="arguments of the framework's trainer; null = its CPU recipe")
    precision: Precision = Field(
        "auto", description="auto: bf16 autocast where the CPU (AVX512-BF16/AMX) or GPU does bf16 natively, else fp32"
    )

    @model_validator(mode="after")
    def _default_recipe(self):
        if self.recipe is None:
            self.recipe = DEFAULT_RECIPES.get((self.stage, self.framework))
        return self


class SftSection(_TrainingSection):
    stage: ClassVar[str] = "sft"
    examples: int | None = Field(
        None, ge=1, description="training examples drawn from the CoT data (null = all); rare levels repeat if needed"
    )
    balance: Balance = Field("none", description="level shares of the examples: none (as in the data), sqrt or equal")
    label_weight: float = Field(
        1.0, gt=0, le=1000, description="answer_first: the label token's weight in the SFT loss against the trace's "
        "tokens (1 = every token alike); framework trl takes it, llamafactory refuses it",
    )


class PostCotSection(_Section):
    """Post-CoT conversion by training, the paper's order: the policy learns and is rewarded reasoning first
    (``format: think_answer`` through SFT, DPO and GRPO), then is fine-tuned on the same examples in answer-first
    form, so that serving reads its label distribution in one forward pass (the deploy stage scores this model).
    It is trained by the ``sft`` section's framework and recipe, from the last think-first model."""

    enabled: bool = False
    examples: int | None = Field(None, ge=1, description="answer-first examples (null = as many as sft.examples)")
    label_weight: float = Field(
        1.0, gt=0, le=1000, description="the label token's weight in this stage's loss (framework trl), as sft.label_weight"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="trainer arguments on top of the SFT recipe and sft.overrides"
    )


class PassnSection(PassnRunSettings):
    """Stage 2 sampling from the SFT model (its difficulty file also drives stage 3)."""

    enabled: bool = True
    limit: int | None = Field(None, ge=1, description="sample only the first N training prompts (CPU budgets)")
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
        from taosr1_plugins.core.options import RUN_MODEL, check_options

        # by the backend's own options model (pydantic only: no torch or vLLM); an unknown name is preflight's
        check_options("generation_backend", self.backend, self.options, given=RUN_MODEL, if_registered=True)
        return self


class DpoSection(_TrainingSection, PairSettings):
    stage: ClassVar[str] = "dpo"
    enabled: bool = True


class GrpoSection(_FrameworkSection):
    """Stage 3: TRL on this machine (CPU or one GPU), or the OpenRLHF launch script on a Ray cluster of GPUs."""

    stage: ClassVar[str] = "grpo"
    enabled: bool = True
    framework: str = "trl"
    recipe: str = Field("../recipes/trl/grpo_smollm2.yaml", description="GRPO settings: reward, sampling, steps, ...")
    overrides: dict[str, Any] = Field(default_factory=dict, description="GRPO settings on top of the recipe")


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

    def fingerprint(self) -> dict[str, Any]:
        """What the deploy stage's numbers depend on: where the pairs are scored (executor, ray) is left out, so
        moving a run's scoring onto a cluster re-runs nothing."""
        return self.model_dump(exclude={"executor", "ray"})

    @model_validator(mode="after")
    def _backend_takes_options(self):
        from taosr1_plugins.core.options import RUN_MODEL, check_options

        check_options("deployment_adapter", self.backend, self.options, given=RUN_MODEL, if_registered=True)
        return self


class EvalSection(_Section):
    split: Literal["dev", "test"] = "test"
    limit: int | None = Field(None, ge=1, description="evaluate only the first N pairs (null = all)")
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1)
    backend: Literal["hf", "vllm"] = Field("hf", description="what generates the responses: hf (transformers) or "
                                           "vllm (greedy, one completion per pair, in the vLLM environment)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="vllm generation backend options (as passn.options), e.g. max_model_len"
    )
    zero_shot_baseline: bool = Field(True, description="also evaluate the base model before SFT")


class BaselinesSection(_Section):
    """`taosr1 baselines CONFIG`: trained on the run's train split, scored on its test split."""

    run: list[BaselineName] = Field(default_factory=lambda: list(BASELINES))
    cross_encoder: CrossEncoderSettings = Field(default_factory=CrossEncoderSettings)
    direct_answer_overrides: dict[str, Any] = Field(
        default_factory=dict, description="on top of the SFT recipe and sft.overrides (same examples, no reasoning)"
    )
    batch_size: int = Field(8, ge=1)


class RunConfig(_Section):
    run_dir: str = "runs/quickstart"
    seed: int = Field(0, ge=0, lt=2**32, description="in [0, 2^32), the range numpy's seeding takes")
    format: ResponseFormat = ResponseFormat.THINK_ANSWER
    prompt: PromptStyle = Field(default_factory=PromptStyle, description="the student's prompt, in every stage")
    isolate_stages: bool | None = Field(
        None, description="run each model stage (SFT/DPO/GRPO with TRL, pass@N, eval, deploy) in its own process so "
        "the GPU is empty for the next; null = when CUDA is available"
    )
    vllm_python: str | None = Field(
        None, description="the vLLM environment's interpreter, where a stage whose backend is vllm runs (its own "
        "process) when this one has no vLLM: a path (relative to the config) or a command on PATH; null = "
        "$TAOSR1_VLLM_PYTHON, else the checkout's .venv-vllm (make install builds it)"
    )
    data: DataSection = Field(default_factory=DataSection)
    split: SplitSection = Field(default_factory=SplitSection)
    cot: CotSection = Field(default_factory=CotSection)
    model: ModelSection = Field(default_factory=ModelSection)
    sft: SftSection = Field(default_factory=SftSection)
    passn: PassnSection = Field(default_factory=PassnSection)
    dpo: DpoSection = Field(default_factory=DpoSection)
    grpo: GrpoSection = Field(default_factory=GrpoSection)
    post_cot: PostCotSection = Field(default_factory=PostCotSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    eval: EvalSection = Field(default_factory=EvalSection)
    baselines: BaselinesSection = Field(default_factory=BaselinesSection)

    # where the config file lives: relative paths inside it resolve from there
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _answer_position_needs_answer_first(self):
        # both read the label at a fixed position right after `<answer>`, which only the answer-first form has
        if self.format is not ResponseFormat.ANSWER_FIRST:
            if self.sft.label_weight != 1.0:
                raise ValueError("sft.label_weight weighs the label token at the answer position: it needs format: answer_first")
            if self.passn.difficulty == "one_pass":
                raise ValueError("passn.difficulty: one_pass reads the label at the answer position; it needs format: answer_first")
        elif self.post_cot.enabled:
            raise ValueError("post_cot converts a think-first policy to answer-first: it needs format: think_answer "
                             "(an answer_first policy is served as trained)")
        return self

    def resolve(self, path: str | Path) -> Path:
        """A path of the config, relative to its folder. One that is not there but names a shipped file as the
        checkout's configs/ do (``../recipes/trl/sft_cot_smollm2.yaml``) is the package's copy: a config written
        by `taosr1 init`, or copied out of the checkout, runs from any folder and after a plain `pip install`."""
        path = Path(path)
        if path.is_absolute():
            return path
        beside = (self.base_dir / path).resolve()
        if not beside.exists() and (shipped := shipped_path(path)) is not None:
            return shipped
        return beside  # also when missing: the error names the path the config meant

    def scheme_ref(self) -> str | None:
        """data.scheme as get_scheme takes it: a YAML file is relative to this config, as data.input is."""
        from taosr1_plugins.core.schemes import is_scheme_file

        ref = self.data.scheme
        if ref and (is_scheme_file(ref) or self.resolve(ref).is_file()):
            return str(self.resolve(ref))
        return ref


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    path = Path(path)
    try:
        data = yaml_load.safe_load(path.read_text(encoding="utf-8")) or {}
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
        # a check across sections (RunConfig's own validators) is about the response format
        field, message = first_problem(exc, whole="format")
        cause = (exc.errors()[0].get("ctx") or {}).get("error")
        if isinstance(cause, OptionError):  # a plugin's options model refused one key: name the key, not the section
            field, message = f"{field}.options" + (f".{cause.option}" if cause.option != "options" else ""), str(cause)
        raise DataError(str(path), None, field, message) from exc
    config.base_dir = path.resolve().parent
    return config
