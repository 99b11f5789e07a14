"""The `openrlhf` training backend: GRPO as a Ray job (recipes/openrlhf/grpo_taosr1.sh) on a cluster of GPUs.

The stage writes what the script reads (difficulty-mixed prompt files, their probabilities, the reward settings),
checks the OpenRLHF environment (its own venv, ``options.python``) and runs the script; OpenRLHF saves the final
policy into the stage's model folder. ``options.launch_env`` ``DRY_RUN: "1"`` prints the Ray job instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.hookspecs import hookimpl
from taosr1_plugins.training.backend import DryRunStop, SettingError, TrainingJob

# refused wherever a config asks for guided replay on OpenRLHF: its rollouts come from vLLM, not the policy
GUIDED_REPLAY_NEEDS_TRL = "guided_replay is a TRL-backend option (OpenRLHF's rollouts come from vLLM)"


class OpenRLHFOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    launch_script: str = Field("../recipes/openrlhf/grpo_taosr1.sh", description="the Ray job script, relative to the config")
    launch_env: dict[str, str] = Field(default_factory=dict, description="e.g. RAY_ADDRESS, DRY_RUN")
    python: str | None = Field(
        None, description="the OpenRLHF environment's interpreter (its own venv, see docs/gpu.md), checked before the "
        "job is submitted: a path (relative to the config) or a command on PATH; null = python3 on PATH"
    )


def openrlhf_python(job: TrainingJob) -> str:
    python = job.options.python
    if python and "/" in python:
        return str(job.resolve(python))
    return python or "python3"


class OpenRLHFBackend:
    name: ClassVar[str] = "openrlhf"
    stages: ClassVar[tuple[str, ...]] = ("grpo",)
    options_model: ClassVar[type[BaseModel]] = OpenRLHFOptions

    def check(self, job: TrainingJob) -> None:
        """The launch script, guided replay, and (unless a dry run) the same environment check the stage makes,
        with the reward defaults since the run's reward.yaml is not written yet: a missing package stops the
        run before hours of SFT rather than after."""
        from taosr1_plugins.grpo.config import TRL_TRAINER_ARGUMENTS
        from taosr1_plugins.integrations.openrlhf.env import EnvironmentCheckError, check_openrlhf_env
        from taosr1_plugins.integrations.openrlhf.launch import LaunchError, is_dry_run, job_nodes, script_repo
        from taosr1_plugins.integrations.openrlhf.shared_storage import require_shared_storage

        script = job.resolve(job.options.launch_script)
        if not script.is_file():
            raise SettingError("options.launch_script", f"{'is not a regular file' if script.exists() else 'no such file'}: {script}")
        settings = job.method["settings"]
        if settings.guided_replay:
            raise SettingError("overrides.guided_replay", GUIDED_REPLAY_NEEDS_TRL)
        trl_only = [name for name in TRL_TRAINER_ARGUMENTS if name in settings.model_fields_set]
        if trl_only:
            raise SettingError(trl_only[0], "a TRL trainer argument (set by grpo.recipe or grpo.overrides): OpenRLHF "
                               "takes its trainer arguments from its launch script (options.launch_script) and would "
                               "ignore it; recipes/openrlhf/grpo_qwen.yaml holds only what OpenRLHF reads")
        require_shared_storage({"the run folder": job.work_dir, "the checkout (workers' PYTHONPATH)": script_repo(script)},
                               job_nodes(job.options.launch_env))
        if is_dry_run(job.options.launch_env):
            return
        try:
            check_openrlhf_env(openrlhf_python(job), script_repo(script), None)
        except EnvironmentCheckError as exc:
            raise LaunchError(f"grpo.framework 'openrlhf': {exc}") from exc

    def train(self, job: TrainingJob) -> dict[str, Any]:
        from taosr1_plugins.integrations.openrlhf.launch import launch, prepare_launch, with_run_lengths

        settings = with_run_lengths(job.method["settings"], job.overrides, *job.method.get("new_token_budgets", ()))
        prompts_dir = job.work_dir / "openrlhf"
        policy = Path(job.model)
        prompts = prepare_launch(job.data["records"], job.data["difficulty"], job.scheme, settings, prompts_dir, policy,
                                 style=job.style)
        result = launch(job.resolve(job.options.launch_script), policy, prompts_dir, job.output_dir,
                        job.options.launch_env, job.work_dir / "launch.log", openrlhf_python(job))
        if result["dry_run"]:
            raise DryRunStop(f"DRY_RUN: the launch command is in {result['log']}; no GRPO model was trained")
        return {**result, "prompt_probs": prompts["prompt_probs"]}


@hookimpl
def register_training_backends(register):
    register(OpenRLHFBackend.name, OpenRLHFBackend)
