"""A wheel works without the checkout: it carries recipes/, configs/ and patches/, and `taosr1 init`'s config
passes `taosr1 run --check` from a folder outside the checkout, with only the wheel's package importable.

Built as `python -m build` does (sdist, then the wheel from the unpacked sdist), so MANIFEST.in is checked too;
with the environment's setuptools and no index (--no-build-isolation --no-index): nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from taosr1_plugins.shipped import SHIPPED

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this environment")
    tmp = tmp_path_factory.mktemp("wheel")
    # a copy: building in the checkout would leave build/ and *.egg-info there, and two runs would share them
    source = tmp / "checkout"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".*", "runs", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks"))
    dist = tmp / "dist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"
    sdist_name = _run([sys.executable, "-c", code], source).strip().splitlines()[-1]
    with tarfile.open(dist / sdist_name) as archive:
        archive.extractall(tmp / "sdist", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (unpacked,) = (tmp / "sdist").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          str(unpacked), "-w", str(dist)], tmp)
    (built,) = dist.glob("*.whl")
    return built


def _shipped_files() -> set[str]:
    return {
        path.relative_to(REPO).as_posix() for name in SHIPPED for path in (REPO / name).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not any(p.startswith(".") for p in path.parts)
    }


def test_wheel_carries_recipes_configs_and_patches_inside_the_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    expected = {f"taosr1_plugins/{name}" for name in _shipped_files()}
    assert "taosr1_plugins/configs/quickstart.yaml" in expected
    assert expected <= names, sorted(expected - names)
    assert not any(name.startswith(tuple(f"{s}/" for s in SHIPPED)) for name in names)  # nothing outside the package
    assert modes["taosr1_plugins/recipes/openrlhf/grpo_taosr1.sh"] & stat.S_IXUSR  # launch scripts stay executable


def test_init_config_passes_the_preflight_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # what pip install puts into site-packages, less the console script
    work = tmp_path / "work"
    work.mkdir()
    # the wheel's package only: no PYTHONPATH to the checkout (the environment's editable install, if any, comes
    # after PYTHONPATH on sys.path)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    taosr1 = [sys.executable, "-m", "taosr1_plugins.cli"]

    _run([*taosr1, "init", "exp"], work, env)
    shown = _run([sys.executable, "-c", (
        "import taosr1_plugins\n"
        "from taosr1_plugins.pipeline.config import load_config\n"
        "config = load_config('exp/taosr1.yaml')\n"
        "print(taosr1_plugins.__file__)\n"
        "for section in ('sft', 'dpo', 'grpo'):\n"
        "    print(config.resolve(getattr(config, section).recipe))\n"
    )], work, env).splitlines()
    package = site / "taosr1_plugins"
    assert Path(shown[0]).parent == package
    for recipe in shown[1:]:
        assert Path(recipe).is_relative_to(package / "recipes") and Path(recipe).is_file(), recipe

    out = _run([*taosr1, "run", "exp/taosr1.yaml", "--check"], work, env)
    assert "ready to run import … deploy" in out
    assert not (work / "runs").exists()
