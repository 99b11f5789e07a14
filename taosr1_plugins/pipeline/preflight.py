"""Checking a run config before the first stage starts: every file it names and every plugin it asks for.

Without this a typo in the DPO recipe path surfaces only after import, CoT and SFT have run for an hour.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import yaml

from taosr1_plugins.errors import DataError, UserError
from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.training.backend import TRAINING_STAGES, SettingError
from taosr1_plugins.core import yaml_load



def check_run_config(config: RunConfig, source: str | Path | None = None, stages: Collection[str] | None = None) -> None:
    """Raise DataError (config file, field, problem) at the first problem of an enabled stage among ``stages``
    (None: all), so `--until dpo` does not fail on a GRPO recipe it will never read."""
    from taosr1_plugins import plugins
    from taosr1_plugins.data.columns import ImportOptionsError
    from taosr1_plugins.data.importing import check_import
    from taosr1_plugins.errors import UnknownPluginError

    where = str(source) if source else "run config"

    def fail(field: str, message: str) -> None:
        raise DataError(where, None, field, message)

    def need_file(field: str, value: str | None) -> None:
        if value is None:
            return
        path = config.resolve(value)
        if not path.is_file():
            fail(field, f"{'is not a regular file' if path.exists() else 'no such file'}: {path}")

    def need_recipe(field: str, value: str | None) -> None:
        """A recipe must exist and be a YAML mapping: the trainer would fail on it only when its stage starts."""
        need_file(field, value)
        if value is None:
            return
        path = config.resolve(value)
        try:
            loaded = yaml_load.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            fail(field, f"cannot read {path}: {exc}")
        if loaded is not None and not isinstance(loaded, dict):
            fail(field, f"{path} is not a mapping of settings")

    def need_plugin(field: str, kind: str, name: str):
        try:
            return plugins.get(kind, name)
        except UnknownPluginError as exc:
            fail(field, str(exc))

    data = config.data
    need_plugin("data.source", "importer", data.source)
    need_file("data.input", data.input)
    try:
        check_import(data.source, config.scheme_ref(), data)
    except ImportOptionsError as exc:
        fail(f"data.{exc.field}", str(exc))
    except (UnknownPluginError, ValueError, OSError) as exc:
        fail("data.scheme", str(exc))

    def runs(stage: str) -> bool:
        return stages is None or stage in stages

    from taosr1_plugins.pipeline.stages import stage_enabled

    if runs("cot"):
        need_plugin("cot.teacher", "teacher", config.cot.teacher)
    training = [stage for stage in TRAINING_STAGES if runs(stage) and stage_enabled(config, stage)]
    if runs("post_cot") and config.post_cot.enabled and "sft" not in training:
        training.insert(0, "sft")  # the post-CoT conversion is trained by the sft section's framework and recipe
    for stage in training:
        need_recipe(f"{stage}.recipe", getattr(config, stage).recipe)
        _check_plugins_named(config, stage, fail)
    if (config.passn.enabled or config.dpo.enabled) and runs("passn"):
        need_plugin("passn.backend", "generation_backend", config.passn.backend)
    if config.deploy.enabled and runs("deploy"):
        need_plugin("deploy.backend", "deployment_adapter", config.deploy.backend)
    from taosr1_plugins.core.models import check_model

    try:  # as the stages resolve it (relative to the working directory); a built-in one is prepared by them
        check_model(config.model.base)
    except UserError as exc:
        fail("model.base", str(exc))
    # last: a backend may import its framework or probe another environment, seconds the checks above do not cost
    check_training_backends(config, training, where)
    check_vllm_stages(config, [stage for stage in ("passn", "eval", "deploy") if runs(stage)], where)


def check_vllm_stages(config: RunConfig, stages: Collection[str], where: str) -> None:
    """The vLLM environment, when a stage to run uses vLLM and this process has none: probed once, every missing
    piece named (status 2), before the first stage rather than when that stage starts."""
    from taosr1_plugins.core.vllm.env import VLLMEnvironmentError, check_vllm_env
    from taosr1_plugins.pipeline.stage_process import stage_python
    from taosr1_plugins.pipeline.stages import stage_enabled

    pythons = {stage_python(config, stage) for stage in stages if stage_enabled(config, stage)} - {None}
    for python in pythons:
        try:
            check_vllm_env(python)
        except VLLMEnvironmentError as exc:
            raise DataError(where, None, "vllm_python", str(exc)) from None


def _check_plugins_named(config: RunConfig, stage: str, fail) -> None:
    """The training backend, and for GRPO the sampler and reward its settings name."""
    from taosr1_plugins import plugins
    from taosr1_plugins.errors import UnknownPluginError
    from taosr1_plugins.pipeline.training import grpo_settings

    try:
        plugins.get("training_backend", getattr(config, stage).framework)
    except UnknownPluginError as exc:
        fail(f"{stage}.framework", str(exc))
    if stage != "grpo":
        return
    try:
        settings = grpo_settings(config)
    except SettingError as exc:
        fail(f"grpo.{exc.field}", exc.message)
    for setting, kind, name in (("sampler", "prompt_sampler", settings.sampler),
                                ("reward.function", "reward", settings.reward.function)):
        try:
            plugins.get(kind, name)
        except UnknownPluginError as exc:
            fail("grpo.recipe", f"setting '{setting}': {exc}")
    from taosr1_plugins.core.options import OptionError, check_options

    try:  # the reward's own parameters, as the reward is built on every worker
        check_options("reward", settings.reward.function, settings.reward.options)
    except OptionError as exc:
        fail("grpo.reward.options", str(exc))


def check_training_backends(config: RunConfig, stages: Collection[str], where: str) -> None:
    """Each training stage's backend checks its own: the recipe and overrides built into its framework's config,
    its options, its environment. With ``isolate_stages`` in a child process, so that the main process never
    imports a framework (a model stage's process gives the GPU back when it ends; the main one does not)."""
    from taosr1_plugins.pipeline.stage_process import check_training_in_process, isolation_wanted
    from taosr1_plugins.pipeline.training import check_training

    if not stages:
        return
    try:
        if isolation_wanted(config):
            check_training_in_process(config, list(stages))
        else:
            check_training(config, stages)
    except SettingError as exc:
        raise DataError(where, None, f"{exc.stage}.{exc.field}", exc.message) from None
