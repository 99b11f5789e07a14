"""The GRPO stage checks the OpenRLHF environment (``grpo.options.python``) as a Ray worker would run it."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from taosr1_plugins.integrations.openrlhf.env import EnvironmentCheckError, check_openrlhf_env, probe, problems

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def reward_config(tmp_path) -> Path:
    path = tmp_path / "reward.yaml"
    path.write_text("format: answer_first\nscheme: esci\n")
    return path


def test_this_environment_has_openrlhf_and_a_loadable_reward(reward_config):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    import importlib.util

    report = probe(sys.executable, REPO, reward_config, ("openrlhf", "ray", "vllm", "deepspeed"))
    assert report["packages"]["openrlhf"] == "0.11.2"
    assert report["reward"]["ok"] and Path(report["reward"]["package"]).is_relative_to(REPO)
    missing = {name for name in ("ray", "vllm", "deepspeed") if importlib.util.find_spec(name) is None}
    assert set(problems(report, REPO)) == {f"{name} is not installed" for name in missing}
    if missing:  # the CPU environment: the full check refuses it, naming each missing package
        with pytest.raises(EnvironmentCheckError) as caught:
            check_openrlhf_env(sys.executable, REPO, reward_config)
        assert all(name in str(caught.value) for name in missing) and "docs/gpu.md" in str(caught.value)


def test_bad_reward_config_is_reported_from_the_worker_environment(tmp_path):
    bad = tmp_path / "reward.yaml"
    bad.write_text("correct_weight: [1]\n")
    report = probe(sys.executable, REPO, bad, ("openrlhf",))
    assert not report["reward"]["ok"] and "correct_weight" in report["reward"]["error"]
    assert any("reward does not load" in p for p in problems(report, REPO))


def test_an_interpreter_without_the_packages_is_refused(reward_config):
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare is None or Path(bare).resolve() == Path(sys.executable).resolve():
        pytest.skip("no separate system python3")
    report = probe(bare, REPO, reward_config, ("openrlhf",))
    if report["packages"]["openrlhf"] is not None:
        pytest.skip("the system python3 has openrlhf")
    found = problems(report, REPO)
    assert "openrlhf is not installed" in found


def test_a_missing_interpreter_is_named(reward_config, tmp_path):
    with pytest.raises(EnvironmentCheckError, match="no_such_python"):
        check_openrlhf_env(str(tmp_path / "no_such_python"), REPO, reward_config)


def test_main_job_dry_run_uses_grpo_python_and_records_the_check(tmp_path):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from test_grpo_recipe import _grpo_stage_context

    from taosr1_plugins.integrations.openrlhf.parser import openrlhf_parser

    from taosr1_plugins.pipeline.stages import DryRunStop, run_grpo

    ctx = _grpo_stage_context(tmp_path, {"DRY_RUN": "1"})
    ctx.config.grpo.options["python"] = sys.executable
    with pytest.raises(DryRunStop):
        run_grpo(ctx)
    command = shlex.split(ctx.path("grpo", "launch.log").read_text())
    separator = command.index("--")
    assert command[separator + 1 : separator + 4] == [sys.executable, "-m", "openrlhf.cli.train_ppo_ray"]
    ray_beside = Path(sys.executable).parent / "ray"
    assert command[0] == (str(ray_beside) if ray_beside.exists() else "ray")
    openrlhf_parser().parse_args(command[separator + 4 :])
    report = json.loads(ctx.path("grpo", "openrlhf", "openrlhf_env.json").read_text())
    assert report["python"] == sys.executable and report["reward"]["ok"]
    assert isinstance(report["problems"], list)


def test_gpu_config_names_the_openrlhf_environment_inside_the_checkout():
    from taosr1_plugins.integrations.openrlhf.backend import openrlhf_python
    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.context import RunContext
    from taosr1_plugins.pipeline.training import training_job

    def python_of(config):
        return openrlhf_python(training_job(RunContext(config), "grpo", model="policy", data={})[1])

    assert Path(python_of(load_config(REPO / "configs" / "gpu_qwen.yaml"))) == REPO / ".venv-openrlhf" / "bin" / "python"
    assert python_of(load_config(REPO / "configs" / "gpu_qwen.yaml", {"grpo.options.python": "python3"})) == "python3"


def test_check_env_command_exits_2_naming_what_is_missing(tmp_path):
    import subprocess

    missing_python = tmp_path / "no_such_python"
    result = subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "grpo", "check-env", "--python", str(missing_python)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no_such_python" in result.stderr


def test_main_job_checks_the_openrlhf_environment_before_its_first_stage(tmp_path):
    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.integrations.openrlhf.launch import LaunchError
    from taosr1_plugins.pipeline.runner import run_pipeline

    config = RunConfig.model_validate({
        "run_dir": str(tmp_path / "run"),
        "grpo": {"framework": "openrlhf", "recipe": str(REPO / "recipes/openrlhf/grpo_qwen.yaml"),
                 "options": {"python": str(tmp_path / "no_such_venv" / "bin" / "python"),
                             "launch_script": str(REPO / "recipes/openrlhf/grpo_taosr1.sh")}},
    })
    config.base_dir = REPO / "configs"  # where the default recipes resolve from
    with pytest.raises(LaunchError, match="no_such_venv"):
        run_pipeline(config)
    assert not (tmp_path / "run").exists()  # nothing ran
    # a run that stops before GRPO, or only prints the Ray job, does not need the environment yet
    run_pipeline(config, until_stage="import")
    assert (tmp_path / "run" / "data" / "all.jsonl").is_file()
