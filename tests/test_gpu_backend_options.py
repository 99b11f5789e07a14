"""The main job's backend options for pass@N and deployment on GPUs, built from configs/gpu_qwen.yaml and
checked against the options models the built-in backends declare, without importing vLLM (not installed on CPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from taosr1_plugins.errors import DataError
from taosr1_plugins.passn.generation import generation_options
from taosr1_plugins.pipeline.config import load_config

REPO = Path(__file__).resolve().parents[1]
GPU_CONFIG = REPO / "configs" / "gpu_qwen.yaml"


def test_gpu_config_builds_vllm_options_the_backend_accepts():
    from taosr1_plugins.passn.backends.vllm import VLLMBackendOptions

    passn = load_config(GPU_CONFIG).passn
    assert passn.backend == "vllm"
    options = generation_options(passn.backend, passn.batch_size, passn.options)
    assert "batch_size" not in options  # VLLMBackendOptions forbids it: this is what failed every GPU run
    validated = VLLMBackendOptions(model="runs/gpu_qwen/sft/model", **options)
    assert validated.tensor_parallel_size == passn.options["tensor_parallel_size"] > 1
    with pytest.raises(ValueError, match="batch_size"):
        VLLMBackendOptions(model="m", batch_size=passn.batch_size)


def test_options_are_checked_without_importing_vllm_or_torch():
    code = (
        "import sys; from taosr1_plugins.pipeline.config import load_config; "
        f"load_config({str(GPU_CONFIG)!r}); "
        "print(sorted(m for m in ('vllm', 'torch', 'transformers', 'openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hf_backend_still_gets_the_batch_size():
    options = generation_options("hf", 6, {"device": "cpu"})
    assert options == {"device": "cpu", "batch_size": 6}
    assert "batch_size" not in generation_options("openai", 6, {"concurrency": 2})
    assert generation_options("hf", 6, {"batch_size": 2}) == {"batch_size": 2}  # the options' own wins
    # plugin backends: tests/test_plugin_options.py


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"passn.options": {"tensor_paralel_size": 4}}, "passn", "tensor_paralel_size"),
        ({"passn.options": {"tensor_parallel_size": 0}}, "passn", "tensor_parallel_size"),
        ({"passn.options": {"model": "other"}}, "passn", "option 'model': the stage passes this itself"),
        ({"passn.options": {"engine_args": {"tensor_parallel_size": 2}}}, "passn", "engine_args"),
        ({"passn.backend": "hf", "passn.options": {"devise": "cpu"}}, "passn", "generation backend 'hf' option 'devise'"),
        ({"passn.backend": "openai", "passn.options": {"use_n": "maybe"}}, "passn",
         "generation backend 'openai' option 'use_n'"),
        ({"deploy.options": {"gpu_memory_utilisation": 0.5}}, "deploy", "gpu_memory_utilisation"),
        ({"deploy.options": {"device": "cpu"}}, "deploy", "deployment adapter 'vllm' option 'device'"),
        ({"deploy.options": {"model": "other"}}, "deploy", "option 'model': the stage passes this itself"),
        ({"deploy.backend": "hf", "deploy.options": {"max_explain_tokens": 0}}, "deploy",
         "deployment adapter 'hf' option 'max_explain_tokens'"),
    ],
)
def test_bad_backend_options_stop_the_config_load(override, field, words):
    with pytest.raises(DataError) as caught:
        load_config(GPU_CONFIG, override)
    # the field is the option's own path (section.options.key), the message names the plugin and the key
    assert caught.value.file == str(GPU_CONFIG) and caught.value.field.startswith(f"{field}.options")
    assert words in caught.value.message


def test_bad_option_exits_2_from_taosr1_run():
    result = subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", "run", str(GPU_CONFIG), "--set", "passn.options={tensor_paralel_size: 4}"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2 and "gpu_qwen.yaml" in result.stderr and "tensor_paralel_size" in result.stderr



def test_the_run_seed_reaches_an_engine_seeded_once():
    """vLLM's CPU sampler refuses per-request seeds, so its engine is seeded once: the pass@N stage hands it the
    run's seed, a backend without a seed option gets none, and a seed given twice is refused."""
    from taosr1_plugins.passn.backends.vllm import VLLMBackendOptions

    assert generation_options("vllm", 6, {}, seed=7) == {"seed": 7}
    assert generation_options("vllm", 6, {"seed": 3}, seed=7) == {"seed": 3}  # the options' own wins
    assert "seed" not in generation_options("hf", 6, {}, seed=7)  # seeds each request itself
    assert "seed" not in generation_options("openai", 6, {}, seed=7)
    assert VLLMBackendOptions(model="m", **generation_options("vllm", 6, {}, seed=7)).seed == 7
    with pytest.raises(ValueError, match="seed"):
        VLLMBackendOptions(model="m", seed=1, engine_args={"seed": 2})
