"""recipes/openrlhf/grpo_taosr1.sh against the pinned OpenRLHF: every flag it passes is defined (and
parses) in openrlhf.cli.train_ppo_ray, and every file it names exists after our commands ran.

train_ppo_ray imports ray and vllm at module level, so it cannot be imported on CPU; we read its source
and execute only the statements of its ``__main__`` block that build the argparse parser.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.integrations.openrlhf.parser import openrlhf_parser

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "openrlhf" / "grpo_taosr1.sh"
OPENRLHF_VERSION = "0.11.2"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from typer.testing import CliRunner

    from taosr1_plugins.cli import app
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import write_jsonl

    tmp = tmp_path_factory.mktemp("grpo_recipe")
    write_jsonl(tmp / "train.jsonl", list(import_records("esci", esci_sample_path()))[:30])
    result = CliRunner().invoke(app, ["grpo", "prepare", "--data", str(tmp / "train.jsonl"), "--out-dir", str(tmp / "grpo")])
    assert result.exit_code == 0, result.output
    return tmp / "grpo"


def dry_run(grpo_dir: Path) -> list[str]:
    env = {**os.environ, "DRY_RUN": "1", "POLICY": "/models/dpo", "GRPO_DIR": str(grpo_dir)}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def test_pinned_openrlhf():
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    assert metadata.version("openrlhf") == OPENRLHF_VERSION


def test_script_flags_exist_in_train_ppo_ray_and_files_exist(prepared):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    command = dry_run(prepared)
    assert Path(command[0]).name == "ray" and command[1:3] == ["job", "submit"]
    separator = command.index("--")
    assert command[separator + 1 : separator + 4] == ["python3", "-m", "openrlhf.cli.train_ppo_ray"]
    argv = command[separator + 4 :]

    parser = openrlhf_parser()
    passed = [arg for arg in argv if arg.startswith("--")]
    undefined = [flag for flag in passed if flag not in parser._option_string_actions]
    assert not undefined, f"flags not defined by openrlhf {OPENRLHF_VERSION}: {undefined}"
    args = vars(parser.parse_args(argv))  # types, nargs and choices as OpenRLHF checks them

    assert args["algo.advantage.estimator"] == "group_norm"
    assert args["algo.kl.use_loss"] and args["algo.kl.estimator"] == "k3"
    assert args["rollout.n_samples_per_prompt"] > 1
    low, high = args["algo.dynamic_filtering_range"]
    assert args["algo.dynamic_filtering_enable"] and 0 <= low < high <= 1
    assert args["data.input_key"] == "prompt" and args["data.label_key"] == "label" and args["data.apply_chat_template"]

    # every file the command names is ours and exists
    reward_file = Path(args["reward.remote_url"])
    assert reward_file.is_file() and reward_file == REPO / "taosr1_plugins" / "integrations" / "openrlhf" / "reward_func.py"
    datasets = args["data.prompt_dataset"].split(",")
    probs = [float(p) for p in args["data.prompt_probs"].split(",")]
    assert len(datasets) == len(probs) and sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert all(Path(path).is_file() and Path(path).parent == prepared for path in datasets)
    runtime_env = json.loads(next(a for a in command if a.startswith("--runtime-env-json=")).split("=", 1)[1])
    assert Path(runtime_env["env_vars"]["TAOSR1_REWARD_CONFIG"]).is_file()
    assert Path(runtime_env["env_vars"]["PYTHONPATH"]) == REPO


def test_script_needs_prepared_prompts(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "POLICY": "/models/dpo", "GRPO_DIR": str(tmp_path)}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode != 0 and "openrlhf_prompts.env" in result.stderr


def _grpo_stage_context(tmp_path, launch_env):
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import write_jsonl
    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.pipeline.context import RunContext

    config = RunConfig.model_validate({
        "run_dir": str(tmp_path / "run"),
        "format": "answer_first",
        "grpo": {"framework": "openrlhf", "recipe": str(REPO / "recipes/openrlhf/grpo_qwen.yaml"),
                 "options": {"launch_script": str(SCRIPT), "launch_env": launch_env},
                 "overrides": {"reward": {"partial_credit": [0.3]}}},
    })
    ctx = RunContext(config)
    write_jsonl(ctx.path("cot", "train.jsonl"), list(import_records("esci", esci_sample_path()))[:30])
    return ctx


def test_main_job_grpo_stage_launches_openrlhf_on_its_own_files(tmp_path):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    import yaml

    from taosr1_plugins.pipeline.stages import DryRunStop, run_grpo

    ctx = _grpo_stage_context(tmp_path, {"DRY_RUN": "1"})
    with pytest.raises(DryRunStop):
        run_grpo(ctx)
    command = shlex.split(ctx.path("grpo", "launch.log").read_text())
    args = vars(openrlhf_parser().parse_args(command[command.index("--") + 4 :]))
    # the run's DPO model in, the stage's model folder out (OpenRLHF saves the final policy there)
    assert args["actor.model_name_or_path"] == str(ctx.model_dir("dpo"))
    assert args["ckpt.output_dir"] == str(ctx.model_dir("grpo"))
    assert all(Path(p).parent == ctx.path("grpo", "openrlhf") for p in args["data.prompt_dataset"].split(","))
    runtime_env = json.loads(next(a for a in command if a.startswith("--runtime-env-json=")).split("=", 1)[1])
    reward = yaml.safe_load(Path(runtime_env["env_vars"]["TAOSR1_REWARD_CONFIG"]).read_text())
    assert reward["format"] == "answer_first" and reward["partial_credit"] == [0.3] and reward["scheme"] == "esci"


def test_main_job_grpo_stage_refuses_openrlhf_without_gpus(tmp_path):
    import torch

    from taosr1_plugins.integrations.openrlhf.launch import LaunchError
    from taosr1_plugins.pipeline.stages import run_grpo

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(LaunchError, match="grpo.framework 'trl'"):
        run_grpo(_grpo_stage_context(tmp_path, {}))


def _prepare_with(tmp_path: Path, settings: dict) -> Path:
    import yaml
    from typer.testing import CliRunner

    from taosr1_plugins.cli import app
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", list(import_records("esci", esci_sample_path()))[:12])
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(app, ["grpo", "prepare", "--data", str(tmp_path / "train.jsonl"),
                                      "--config", str(tmp_path / "grpo.yaml"), "--out-dir", str(tmp_path / "grpo")])
    assert result.exit_code == 0, result.output
    return tmp_path / "grpo"


def _launch_args(grpo_dir: Path, **env: str) -> tuple[dict, dict]:
    command = shlex.split(subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, check=True,
        env={**os.environ, "DRY_RUN": "1", "POLICY": "/models/dpo", "GRPO_DIR": str(grpo_dir), **env},
    ).stdout)
    runtime_env = json.loads(next(a for a in command if a.startswith("--runtime-env-json=")).split("=", 1)[1])
    return vars(openrlhf_parser().parse_args(command[command.index("--") + 4 :])), runtime_env["env_vars"]


@pytest.mark.parametrize("fmt", ["answer_first", "think_answer"])
def test_prepare_writes_the_reward_the_script_uses_and_it_scores_that_format(tmp_path, monkeypatch, fmt):
    """Item 7: the reward settings travel with the prompts; an answer-first run is scored answer-first."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    import yaml

    from taosr1_plugins.builtin.schemes import ESCI
    from taosr1_plugins.core.formats import render_response
    from taosr1_plugins.integrations.openrlhf.reward_func import reward_func

    grpo_dir = _prepare_with(tmp_path, {"format": fmt, "reward": {"partial_credit": [0.25]}})
    _, env_vars = _launch_args(grpo_dir)
    reward_config = Path(env_vars["TAOSR1_REWARD_CONFIG"])
    assert reward_config == grpo_dir / "reward.yaml"
    assert yaml.safe_load(reward_config.read_text())["format"] == fmt

    monkeypatch.setenv("TAOSR1_REWARD_CONFIG", str(reward_config))
    label = {"gold": "E", "scheme": "esci"}
    right = render_response("The item is the phone case the query asks for.", "E", ESCI, fmt)
    other = render_response("The item is the phone case the query asks for.", "E", ESCI,
                            "think_answer" if fmt == "answer_first" else "answer_first")
    out = reward_func(["P" + right, "P" + other], ["P", "P"], [label, label])
    assert out["scores"].tolist() == [1.0, 0.0] and out["rewards"][0] == pytest.approx(1.2)


def test_script_refuses_to_run_without_the_runs_reward(tmp_path):
    grpo_dir = _prepare_with(tmp_path, {})
    (grpo_dir / "reward.yaml").unlink()
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            env={**os.environ, "DRY_RUN": "1", "POLICY": "/m", "GRPO_DIR": str(grpo_dir)})
    assert result.returncode == 2 and "reward.yaml" in result.stderr and "taosr1 grpo prepare" in result.stderr


@pytest.mark.parametrize(("prompt", "completion"), [(768, 96), (1024, 1024), (512, 3000)])
def test_openrlhf_lengths_come_from_the_grpo_settings(tmp_path, prompt, completion):
    """Item 6: one setting for the completion budget; max_len (vLLM's max_model_len) leaves room for the prompt."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    args, _ = _launch_args(_prepare_with(tmp_path, {"max_prompt_length": prompt, "max_completion_length": completion}))
    assert args["rollout.max_new_tokens"] == completion
    assert args["data.max_len"] == prompt + completion


def test_checkpoints_go_under_the_grpo_folder_and_resume_on_request(tmp_path):
    """Item 11: full-state checkpoints land in the run directory, not in the Ray job's working directory."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    grpo_dir = _prepare_with(tmp_path, {})
    default_path = openrlhf_parser().get_default("ckpt.path")
    args, _ = _launch_args(grpo_dir)
    assert Path(args["ckpt.path"]) == grpo_dir / "checkpoints" and args["ckpt.path"] != default_path
    assert Path(args["ckpt.output_dir"]) == grpo_dir / "model"
    assert not args["ckpt.load_enable"] and args["ckpt.max_num"] >= 1
    # issue 29 item 6: OpenRLHF rotates only CKPT_PATH/_actor; save_hf's global_stepN_hf folders would grow unbounded
    assert not args["ckpt.save_hf"]
    resumed, _ = _launch_args(grpo_dir, RESUME="1", CKPT_PATH=str(tmp_path / "elsewhere"))
    assert resumed["ckpt.load_enable"] and resumed["ckpt.path"] == str(tmp_path / "elsewhere")


def test_main_job_gives_grpo_the_runs_longest_new_token_budget(tmp_path):
    """Item 6 in the main job: pass@N and eval allow 1024 new tokens, so OpenRLHF's rollouts do too."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from taosr1_plugins.pipeline.stages import DryRunStop, run_grpo

    ctx = _grpo_stage_context(tmp_path, {"DRY_RUN": "1"})
    ctx.config.passn.max_new_tokens, ctx.config.eval.max_new_tokens = 1024, 700
    with pytest.raises(DryRunStop):
        run_grpo(ctx)
    command = shlex.split(ctx.path("grpo", "launch.log").read_text())
    args = vars(openrlhf_parser().parse_args(command[command.index("--") + 4 :]))
    assert args["rollout.max_new_tokens"] == 1024
    assert args["data.max_len"] > 1024
    assert Path(args["ckpt.path"]).is_relative_to(ctx.config.resolve(ctx.config.run_dir))


def test_gpu_config_launch_parses_with_openrlhf_and_keeps_its_invariants(tmp_path):
    """The Ray job configs/gpu_qwen.yaml's GRPO stage would submit (DRY_RUN), through OpenRLHF's parser."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    import sys

    import yaml

    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import write_jsonl
    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.context import RunContext
    from taosr1_plugins.pipeline.stages import DryRunStop, run_grpo

    config = load_config(REPO / "configs" / "gpu_qwen.yaml", {
        "run_dir": str(tmp_path / "run"), "data.source": "esci", "data.input": None,  # the shipped sample
        "grpo.options.launch_env": {"DRY_RUN": "1"}, "grpo.options.python": sys.executable,
    })
    ctx = RunContext(config)
    write_jsonl(ctx.path("cot", "train.jsonl"), list(import_records("esci", esci_sample_path()))[:40])
    with pytest.raises(DryRunStop):
        run_grpo(ctx)
    command = shlex.split(ctx.path("grpo", "launch.log").read_text())
    args = vars(openrlhf_parser().parse_args(command[command.index("--") + 4 :]))
    # train_ppo_ray.train(): with colocate_all, actor GPUs == vLLM engines x tensor parallel size
    assert args["train.colocate_all"]
    assert args["actor.num_nodes"] * args["actor.num_gpus_per_node"] == args["vllm.num_engines"] * args["vllm.tensor_parallel_size"]
    assert args["rollout.max_new_tokens"] == max(config.passn.max_new_tokens, config.eval.max_new_tokens)
    assert args["data.max_len"] > args["rollout.max_new_tokens"]
    assert Path(args["ckpt.path"]).is_relative_to(ctx.run_dir) and Path(args["ckpt.output_dir"]) == ctx.model_dir("grpo")
    reward = yaml.safe_load((ctx.path("grpo", "openrlhf") / "reward.yaml").read_text())
    assert reward["format"] == config.format.value == "answer_first"
    probs = [float(p) for p in args["data.prompt_probs"].split(",")]
    assert abs(sum(probs) - 1.0) < 1e-12


@pytest.mark.parametrize("prompt_budget", [16, 4096])
def test_prompt_budget_covers_the_longest_prompt_as_openrlhf_counts_it(tmp_path, tiny_model_dir, prompt_budget):
    """No chosen prompt is cut by OpenRLHF's executor (prompt tokens > max_len - max_new_tokens)."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from openrlhf.datasets.prompts_dataset import preprocess_data
    from transformers import AutoTokenizer

    from taosr1_plugins.builtin.schemes import ESCI
    from taosr1_plugins.grpo.config import GrpoSettings
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.integrations.openrlhf.launch import prepare_launch

    records = list(import_records("esci", esci_sample_path()))[:20]
    settings = GrpoSettings(format="answer_first", max_prompt_length=prompt_budget, max_completion_length=64)
    manifest = prepare_launch(records, [], ESCI, settings, tmp_path / "grpo", policy=tiny_model_dir)
    env = dict(line.split("=", 1) for line in (tmp_path / "grpo" / "openrlhf_prompts.env").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    max_len, max_new_tokens = int(env["MAX_LEN"]), int(env["MAX_NEW_TOKENS"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    lengths = []
    for path in manifest["prompt_dataset"].split(","):
        for row in map(json.loads, Path(path).read_text().splitlines()):
            prompt, _ = preprocess_data(row, input_key="prompt", label_key="label",
                                        apply_chat_template=tokenizer.apply_chat_template)
            lengths.append(len(tokenizer(text=prompt, add_special_tokens=False)["input_ids"]))
    assert max_new_tokens == 64 and max(lengths) <= max_len - max_new_tokens  # openrlhf/utils/agent.py execute()
    assert max_len - max_new_tokens == max(prompt_budget, max(lengths))


def test_relative_paths_reach_the_ray_job_absolute(tmp_path):
    """The Ray job's entrypoint does not run in the caller's directory."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    grpo_dir = _prepare_with(tmp_path, {})
    (tmp_path / "dpo_model").mkdir()
    command = shlex.split(subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, check=True, cwd=tmp_path,
        env={**os.environ, "DRY_RUN": "1", "POLICY": "dpo_model", "GRPO_DIR": "grpo", "OPENRLHF_PYTHON": "venv/bin/python"},
    ).stdout)
    separator = command.index("--")
    assert command[separator + 1] == str(tmp_path / "venv" / "bin" / "python")
    args = vars(openrlhf_parser().parse_args(command[separator + 4 :]))
    assert args["actor.model_name_or_path"] == str(tmp_path / "dpo_model")
    for key in ("ckpt.path", "ckpt.output_dir"):
        assert Path(args[key]).is_absolute() and Path(args[key]).is_relative_to(grpo_dir)
    runtime_env = json.loads(next(a for a in command if a.startswith("--runtime-env-json=")).split("=", 1)[1])
    assert Path(runtime_env["env_vars"]["TAOSR1_REWARD_CONFIG"]) == grpo_dir / "reward.yaml"
    hub = shlex.split(subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, check=True, cwd=tmp_path,
        env={**os.environ, "DRY_RUN": "1", "POLICY": "Qwen/Qwen2.5-7B-Instruct", "GRPO_DIR": str(grpo_dir)},
    ).stdout)
    assert vars(openrlhf_parser().parse_args(hub[hub.index("--") + 4 :]))["actor.model_name_or_path"] == "Qwen/Qwen2.5-7B-Instruct"
