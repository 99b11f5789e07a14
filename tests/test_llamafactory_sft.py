"""CPU SFT through LLaMA-Factory: the patched `llamafactory-cli train` (direct and torchrun re-exec) and
`python -m taosr1_plugins.integrations.llamafactory.train`, each on recipes/llamafactory/sft_cot_tiny.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llamafactory_helpers import ESCI_SAMPLE, assert_trained, esci_lf_dataset

from taosr1_plugins.core.prompts import system_prompt
from taosr1_plugins.core.schemes import get_scheme

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "llamafactory" / "sft_cot_tiny.yaml"
VENV_BIN = Path(sys.executable).parent
MODULE_TRAIN = [sys.executable, "-m", "taosr1_plugins.integrations.llamafactory.train"]
MAX_STEPS = 3  # the recipe's max_steps, which is also its save_steps

pytestmark = pytest.mark.skipif(not ESCI_SAMPLE.is_file(), reason="shared ESCI sample not beside the checkout")


@pytest.fixture(scope="module", autouse=True)
def patched_llamafactory():
    from taosr1_plugins.integrations.llamafactory.patching import PatchState, patch_installed

    states = patch_installed(check=True)
    if any(state is not PatchState.APPLIED for state in states.values()):
        pytest.fail(f"installed llamafactory is not patched ({states}); run `taosr1 patch llamafactory`")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return esci_lf_dataset(tmp_path_factory.mktemp("lf_data"))


def train(command: list[str], model_dir: Path, dataset_dir: Path, out: Path, env: dict[str, str] | None = None):
    overrides = [f"model_name_or_path={model_dir}", f"dataset_dir={dataset_dir}", f"output_dir={out}"]
    return subprocess.run(
        [*command, str(RECIPE), *overrides],
        cwd=REPO,
        env={
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",  # torchrun lives beside the interpreter
            "HF_DATASETS_CACHE": str(out.parent / "hf_datasets"),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_sft_trained(result: subprocess.CompletedProcess, out: Path) -> None:
    assert_trained(result, out, MAX_STEPS)
    # the printed training example is our converter's: our system prompt and a think-then-answer target
    assert system_prompt(get_scheme("esci")).split(" Answer with")[0] in result.stdout
    assert "<|im_start|>assistant\n<think>\n" in result.stdout


@pytest.mark.parametrize("torchrun", [False, True], ids=["direct", "torchrun"])
def test_patched_llamafactory_cli_trains_with_our_converter(tmp_path, tiny_model_dir, dataset_dir, torchrun):
    # FORCE_TORCHRUN makes llamafactory-cli re-execute itself as `torchrun .../launcher.py`, whose
    # __main__ block must load the plugins again in the new process
    env = {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1"} if torchrun else {}
    out = tmp_path / "run"
    result = train([str(VENV_BIN / "llamafactory-cli"), "train"], tiny_model_dir, dataset_dir, out, env)
    assert_sft_trained(result, out)
    if torchrun:
        assert "distributed training: True" in result.stdout + result.stderr


def test_module_entry_point_trains(tmp_path, tiny_model_dir, dataset_dir):
    out = tmp_path / "run"
    result = train(MODULE_TRAIN, tiny_model_dir, dataset_dir, out)
    assert_sft_trained(result, out)


def test_module_entry_point_stops_on_nan_loss(tmp_path, tiny_model_dir, dataset_dir):
    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "nan-model"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.norm.weight"] = torch.full_like(weights["model.norm.weight"], float("nan"))
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "run"
    result = train(MODULE_TRAIN, broken, dataset_dir, out)
    assert result.returncode != 0
    assert "NonFiniteLossError: loss is nan at step 1" in result.stderr
    assert not (out / "model.safetensors").exists()
