"""The `llamafactory` training backend: SFT and DPO through `llamafactory-cli train` (or our module entry point).

The recipe is a LLaMA-Factory YAML; the run fills the model, the dataset and the output folder. At preflight
every recipe and override key is looked up among the fields of LLaMA-Factory's own argument classes (the ones
`llamafactory-cli train` parses), so a typo fails in the first seconds instead of after the earlier stages.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.hookspecs import hookimpl
from taosr1_plugins.training.backend import SettingError, TrainingJob, check_arg_values, refuse_unknown_args


class LlamaFactoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    launcher: Literal["cli", "module"] = Field(
        "cli", description="cli: the patched `llamafactory-cli train`; module: our `python -m` entry point"
    )


def llamafactory_argument_names() -> set[str]:
    """Every key `llamafactory-cli train` accepts: the fields of the argument classes its parser is built from."""
    import dataclasses

    from llamafactory.hparams.parser import _TRAIN_ARGS

    return {f.name for cls in _TRAIN_ARGS for f in dataclasses.fields(cls)}


def _parse_quietly(args: dict[str, Any]) -> Any:
    """LLaMA-Factory's argument classes from ``args``, as `llamafactory-cli train` parses them; transformers'
    deprecation notes are the stage's to print, not the preflight's."""
    from llamafactory.hparams.parser import _parse_train_args
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return _parse_train_args(args)
    finally:
        logging.set_verbosity(verbosity)


class LlamaFactoryBackend:
    name: ClassVar[str] = "llamafactory"
    stages: ClassVar[tuple[str, ...]] = ("sft", "dpo")
    options_model: ClassVar[type[BaseModel]] = LlamaFactoryOptions

    def check(self, job: TrainingJob) -> None:
        if job.method.get("label_weight", 1.0) != 1.0:
            raise SettingError("label_weight", "needs framework: trl (LLaMA-Factory weighs every target token alike)")
        refuse_unknown_args(job, llamafactory_argument_names(), "LLaMA-Factory's trainer")
        from llamafactory.hparams.parser import _TRAIN_ARGS

        # the run's paths stand in for those it fills when the stage starts
        check_arg_values(job, _TRAIN_ARGS, _parse_quietly, "LLaMA-Factory's trainer", model_name_or_path=job.model,
                         dataset_dir=job.work_dir, dataset="taosr1", output_dir=job.work_dir / "model", seed=job.seed)

    def train(self, job: TrainingJob) -> dict[str, Any]:
        from taosr1_plugins.integrations.llamafactory.launch import train

        if job.stage == "sft":
            dataset = {"dataset_dir": job.data["dataset_dir"], "dataset": job.data["dataset"]}
        else:  # dpo: the ranking dataset `taosr1 passn pairs` wrote
            dataset = {"dataset_dir": job.data["pairs_dir"], "dataset": "taosr1_dpo"}
        args = job.recipe_args(model_name_or_path=job.model, **dataset, output_dir=job.output_dir, seed=job.seed)
        summary = train(job.work_dir, args, job.options.launcher)
        if job.stage == "sft":
            examples = job.data["examples"]
            summary["examples"] = min(examples, args.get("max_samples") or examples)  # max_samples takes the first N
        return summary


@hookimpl
def register_training_backends(register):
    register(LlamaFactoryBackend.name, LlamaFactoryBackend)
