"""Checking a run config before the first stage starts: every file it names and every plugin it asks for.

Without this a typo in the DPO recipe path surfaces only after import, CoT and SFT have run for an hour.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import yaml
from pydantic import ValidationError

from taosr1_plugins.errors import DataError, first_problem
from taosr1_plugins.pipeline.config import RunConfig

# the stages' own names for the models the package prepares itself
BUILTIN_MODELS = ("smollm2", "tiny")


def check_run_config(config: RunConfig, source: str | Path | None = None, stages: Collection[str] | None = None) -> None:
    """Raise DataError (config file, field, problem) at the first problem of an enabled stage among ``stages``
    (None: all), so `--until dpo` does not fail on a GRPO recipe it will never read."""
    from taosr1_plugins import plugins
    from taosr1_plugins.core.schemes import get_scheme
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
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    importer = need_plugin("data.source", "importer", data.source)
    need_file("data.input", data.input)
    try:
        get_scheme(data.scheme or importer.default_scheme)
    except (UnknownPluginError, ValueError, OSError) as exc:
        fail("data.scheme", str(exc))

    def runs(stage: str) -> bool:
        return stages is None or stage in stages

    if runs("cot"):
        need_plugin("cot.teacher", "teacher", config.cot.teacher)
    if runs("sft"):
        need_recipe("sft.recipe", config.sft.recipe)
    if (config.passn.enabled or config.dpo.enabled) and runs("passn"):
        need_plugin("passn.backend", "generation_backend", config.passn.backend)
    if config.dpo.enabled and runs("dpo"):
        need_recipe("dpo.recipe", config.dpo.recipe)
    if config.grpo.enabled and runs("grpo"):
        need_recipe("grpo.recipe", config.grpo.recipe)
        from taosr1_plugins.grpo.config import GUIDED_REPLAY_NEEDS_TRL, load_grpo_settings

        try:  # as the GRPO stage loads it
            settings = load_grpo_settings(config.resolve(config.grpo.recipe), **{"format": config.format, **config.grpo.overrides})
        except ValidationError as exc:
            field, message = first_problem(exc)
            fail("grpo.recipe", f"with grpo.overrides, setting '{field}': {message}")
        for setting, kind, name in (("sampler", "prompt_sampler", settings.sampler),
                                    ("reward.function", "reward", settings.reward.function)):
            try:
                plugins.get(kind, name)
            except UnknownPluginError as exc:
                fail("grpo.recipe", f"setting '{setting}': {exc}")
        if config.grpo.backend == "openrlhf":
            need_file("grpo.launch_script", config.grpo.launch_script)
            if settings.guided_replay:
                fail("grpo.overrides", GUIDED_REPLAY_NEEDS_TRL)
    if config.deploy.enabled and runs("deploy"):
        need_plugin("deploy.backend", "deployment_adapter", config.deploy.backend)
    if config.model.base not in BUILTIN_MODELS:
        from taosr1_plugins.core.model_paths import check_model_path

        try:
            check_model_path(config.model.base)  # as the stages use it: relative to the working directory
        except DataError as exc:
            fail("model.base", str(exc))
