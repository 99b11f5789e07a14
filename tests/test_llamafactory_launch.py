"""How the LLaMA-Factory stages start their trainer (issue 29 items 2, 3, 7): torchrun found without the venv on
PATH, ``launcher: module`` under torchrun, and an interrupted training resumed from its checkpoint. CPU, tiny model."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llamafactory_helpers import ESCI_SAMPLE, esci_lf_dataset

from taosr1_plugins.integrations.llamafactory.launch import resumable_checkpoint, train

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "llamafactory" / "sft_cot_tiny.yaml"
BARE_PATH = "/usr/bin:/bin"  # what a shell that never activated the venv has

pytestmark = pytest.mark.skipif(not ESCI_SAMPLE.is_file(), reason="shared ESCI sample not beside the checkout")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return esci_lf_dataset(tmp_path_factory.mktemp("lf_launch_data"))


def recipe_args(model: Path, dataset_dir: Path, out: Path, **overrides) -> dict:
    args = yaml.safe_load(RECIPE.read_text())
    return {**args, "model_name_or_path": str(model), "dataset_dir": str(dataset_dir), "output_dir": str(out), **overrides}


@pytest.fixture
def bare_path(monkeypatch, tmp_path):
    """The environment `.venv/bin/taosr1 run` gets from a shell without the venv: no torchrun on PATH."""
    assert shutil.which("torchrun", path=BARE_PATH) is None, "this machine has a torchrun outside the venv"
    monkeypatch.setenv("PATH", BARE_PATH)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.setenv("FORCE_TORCHRUN", "1")
    monkeypatch.setenv("NPROC_PER_NODE", "1")


@pytest.mark.parametrize("launcher", ["cli", "module"])
def test_torchrun_launch_without_the_venv_on_path(tmp_path, tiny_model_dir, dataset_dir, bare_path, launcher):
    # cli: LLaMA-Factory's launcher runs `torchrun` by bare name; module: our entry point starts itself under
    # torchrun (as a multi-GPU node does) instead of training alone in one process
    stage = tmp_path / "sft"
    stage.mkdir()
    summary = train(stage, recipe_args(tiny_model_dir, dataset_dir, stage / "model"), launcher)
    log = (stage / "train.log").read_text()
    assert "distributed training: True" in log
    assert summary["steps"] == 3


def test_module_entry_point_trains_alone_without_a_second_device(monkeypatch):
    from taosr1_plugins.integrations.llamafactory.train import torchrun_command

    monkeypatch.delenv("FORCE_TORCHRUN", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert torchrun_command(["recipe.yaml"]) is None  # this CPU machine: no device to spread over
    monkeypatch.setenv("FORCE_TORCHRUN", "1")
    monkeypatch.setenv("NPROC_PER_NODE", "8")
    command = torchrun_command(["recipe.yaml", "max_steps=2"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[command.index("--nproc_per_node") + 1] == "8"
    assert command[-4:] == ["-m", "taosr1_plugins.integrations.llamafactory.train", "recipe.yaml", "max_steps=2"]
    monkeypatch.setenv("LOCAL_RANK", "0")  # a rank torchrun started trains itself
    assert torchrun_command(["recipe.yaml"]) is None


RUN_STAGE = "import sys, yaml; from pathlib import Path; from taosr1_plugins.integrations.llamafactory.launch import train; " \
            "train(Path(sys.argv[1]), yaml.safe_load(Path(sys.argv[2]).read_text()), 'module')"


def test_an_interrupted_training_resumes_from_its_checkpoint(tmp_path, tiny_model_dir, dataset_dir, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    stage, out = tmp_path / "sft", tmp_path / "sft" / "model"
    stage.mkdir()
    # the GPU recipes' checkpoint settings (sft_cot.yaml, dpo_taosr1.yaml) on the tiny model
    gpu_recipe = yaml.safe_load((REPO / "recipes/llamafactory/sft_cot.yaml").read_text())
    resume_keys = {key: gpu_recipe[key] for key in ("save_only_model", "overwrite_output_dir")}
    args = recipe_args(tiny_model_dir, dataset_dir, out, max_steps=20, save_steps=2, **resume_keys)
    args_copy = tmp_path / "args.yaml"
    args_copy.write_text(yaml.safe_dump(args))
    first = subprocess.Popen([sys.executable, "-c", RUN_STAGE, str(stage), str(args_copy)], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint-2" / "trainer_state.json").is_file():
            assert first.poll() is None, "the first run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole group: our launcher and the trainer it started
        first.wait()
    assert not (out / "trainer_state.json").exists(), "the first run finished before it was killed"
    killed_at = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))

    summary = train(stage, args, "module")
    log = (stage / "train.log").read_text()
    assert f"Resuming training from {out / f'checkpoint-{killed_at}'}" in log
    # the re-run trained only the steps after the checkpoint (one loss line each), up to the same end
    assert log.count("{'loss'") == 20 - killed_at
    assert summary["steps"] == 20


def _checkpointed(out: Path, step: int) -> None:
    (out / f"checkpoint-{step}").mkdir(parents=True)
    (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")


def test_a_checkpoint_of_other_arguments_or_a_finished_run_is_not_resumed(tmp_path):
    args_file, out = tmp_path / "train.yaml", tmp_path / "model"
    args = {"output_dir": str(out), "learning_rate": 1e-5}
    args_file.write_text(yaml.safe_dump(args))
    _checkpointed(out, 4)
    assert resumable_checkpoint(args_file, args) == out / "checkpoint-4"  # same arguments, interrupted: kept
    assert resumable_checkpoint(args_file, {**args, "learning_rate": 2e-5}) is None  # other settings: cleared
    assert not out.exists()
    _checkpointed(out, 4)
    (out / "trainer_state.json").write_text("{}")  # that run finished: a forced re-run starts over
    assert resumable_checkpoint(args_file, args) is None and not out.exists()
