"""benchmarks/gpu_smoke.sh on CPU: it refuses to run without CUDA, and every variant of the main-job config
it writes (LLaMA-Factory or TRL, vLLM or transformers) loads and passes the backend option checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taosr1_plugins.pipeline.config import load_config

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_smoke.sh"


def _run(tmp_path, tiny_model_dir, **env):
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHON": sys.executable, "MODEL": str(tiny_model_dir), "OUT": str(tmp_path / "out"), **env},
    )


@pytest.mark.parametrize("framework", ["trl", "llamafactory"])
@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_smoke_config_variants_load(tmp_path, tiny_model_dir, framework, backend):
    result = _run(tmp_path, tiny_model_dir, CONFIG_ONLY="1", FRAMEWORK=framework, GEN_BACKEND=backend)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_config(tmp_path / "out" / "config.yaml")
    assert config.sft.framework == config.dpo.framework == framework
    # the recipes it names exist (recipes/cpu/ was split into llamafactory/ and trl/)
    assert all(Path(config.resolve(section.recipe)).is_file() for section in (config.sft, config.dpo, config.grpo))
    assert config.sft.overrides["bf16"] and config.dpo.overrides["bf16"]
    assert config.passn.backend == config.deploy.backend == backend
    assert config.isolate_stages is True
    assert Path(config.model.base) == tiny_model_dir and config.format.value == "answer_first"


def test_smoke_script_needs_a_gpu(tmp_path, tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = _run(tmp_path, tiny_model_dir)
    assert result.returncode == 1 and "no CUDA device" in result.stdout
    assert "torch" in (tmp_path / "out" / "environment.txt").read_text()
