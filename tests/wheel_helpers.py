"""Build the package's wheel as `python -m build` does and install it into a folder of its own, offline.

Built from the sdist (sdist, then the wheel from the unpacked sdist), so MANIFEST.in is checked too; with the
environment's setuptools and no index (--no-build-isolation --no-index): nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_ok(args: list, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    """Run ``args``; its stdout, or a failed assertion showing both streams' tails."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def build_wheel(tmp: Path) -> Path:
    """The wheel file, built under ``tmp``; skips the test where setuptools is not installed."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this environment")
    # a copy: building in the checkout would leave build/ and *.egg-info there, and two runs would share them
    source = tmp / "checkout"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".*", "runs", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks"))
    dist = tmp / "dist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"
    sdist_name = run_ok([sys.executable, "-c", code], source).strip().splitlines()[-1]
    with tarfile.open(dist / sdist_name) as archive:
        archive.extractall(tmp / "sdist", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (unpacked,) = (tmp / "sdist").iterdir()
    run_ok([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
            unpacked, "-w", dist], tmp)
    (built,) = dist.glob("*.whl")
    return built


def install_wheel(wheel: Path, site: Path) -> dict[str, str]:
    """Unpack ``wheel`` into ``site`` (what pip install puts into site-packages, less the console script); the
    environment for commands that must see that package only: no PYTHONPATH to the checkout (the environment's
    editable install, if any, comes after PYTHONPATH on sys.path)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
