"""The `trl` training backend: SFT, DPO and GRPO with TRL's trainers in this process (CPU or one GPU).

SFT and DPO recipes are YAML files of ``SFTConfig`` / ``DPOConfig`` arguments plus two of LLaMA-Factory's
(``max_samples``, ``freeze_trainable_layers``; see finetune.py); GRPO's trainer arguments come from the GRPO
settings, with ``extra_trl_args`` passed to ``GRPOConfig``. At preflight every key is looked up among the
fields of the config class TRL will build, so a typo fails before the earlier stages run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pydantic import BaseModel

from taosr1_plugins.core.jsonl import read_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.hookspecs import hookimpl
from taosr1_plugins.core.options import NoOptions
from taosr1_plugins.training.backend import SettingError, TrainingJob, check_arg_values, refuse_unknown_args

# our keys with LLaMA-Factory's meaning, read by finetune.py before the rest goes to TRL's config
OUR_KEYS = {"max_samples", "freeze_trainable_layers"}
# what the GRPO stage reports of TRL's summary
GRPO_SUMMARY_KEYS = ("steps", "rollouts", "frac_groups_filtered", "frac_zero_std_before", "frac_zero_std_after",
                     "extra_rollouts", "reward_first", "reward_last", "wall_seconds")


def _config_class(stage: str):
    from taosr1_plugins.integrations.trl import compat  # noqa: F401  (makes trl's trainers importable)
    import trl

    return {"sft": trl.SFTConfig, "dpo": trl.DPOConfig, "grpo": trl.GRPOConfig}[stage]


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


class TrlBackend:
    name: ClassVar[str] = "trl"
    stages: ClassVar[tuple[str, ...]] = ("sft", "dpo", "grpo")
    options_model: ClassVar[type[BaseModel]] = NoOptions

    def check(self, job: TrainingJob) -> None:
        config = _config_class(job.stage)
        if job.stage == "grpo":
            settings = job.method["settings"]
            if settings.rollouts == "expected":  # no rollouts: transformers' Trainer, not TRL's GRPOTrainer
                from transformers import TrainingArguments as config
            unknown = sorted(set(settings.extra_trl_args) - _fields(config))
            if unknown:
                raise SettingError(f"overrides.extra_trl_args.{unknown[0]}", f"not an argument of {config.__module__.split('.')[0]}.{config.__name__}")
            return
        refuse_unknown_args(job, _fields(config) | OUR_KEYS, f"trl.{config.__name__}")
        from taosr1_plugins.integrations.trl.finetune import trainer_config

        check_arg_values(job, [config], lambda args: trainer_config(job.stage, args, job.work_dir),
                         f"trl.{config.__name__}", seed=job.seed)

    def train(self, job: TrainingJob) -> dict[str, Any]:
        if job.stage == "sft":
            from taosr1_plugins.integrations.trl.finetune import run_sft_trl

            return run_sft_trl(job.model, read_jsonl(job.data["records"], Record), job.output_dir,
                               job.recipe_args(seed=job.seed), job.fmt, job.style, job.method.get("label_weight", 1.0))
        if job.stage == "dpo":
            from taosr1_plugins.integrations.trl.finetune import run_dpo_trl

            return run_dpo_trl(job.model, job.data["pairs_dir"] / "taosr1_dpo.openrlhf.jsonl", job.output_dir,
                               job.recipe_args(seed=job.seed))
        from taosr1_plugins.integrations.trl.run import run_grpo_trl

        summary = run_grpo_trl(job.model, job.data["records"], job.data["difficulty"], job.work_dir,
                               job.method["settings"], job.output_dir)
        return {**{key: summary[key] for key in GRPO_SUMMARY_KEYS},
                "bucket_probabilities": summary["selection"]["bucket_probabilities"]}


@hookimpl
def register_training_backends(register):
    register(TrlBackend.name, TrlBackend)
