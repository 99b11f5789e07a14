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
    from taosr1_plugins.models import prepare_smollm2

    return prepare_smollm2(progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir) -> Path:
    from taosr1_plugins.models import prepare_tiny

    return prepare_tiny(base=smollm2_dir)
