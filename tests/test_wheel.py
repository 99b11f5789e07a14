"""A wheel works without the checkout: it carries recipes/, configs/ and patches/, and `taosr1 init`'s config
passes `taosr1 run --check` from a folder outside the checkout, with only the wheel's package importable.

Built as `python -m build` does (tests/wheel_helpers.py), so MANIFEST.in is checked too.
"""

from __future__ import annotations

import stat
import sys
import zipfile
from pathlib import Path

import pytest

from taosr1_plugins.shipped import SHIPPED
from wheel_helpers import build_wheel, install_wheel, run_ok

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


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
    env = install_wheel(wheel, site)
    work = tmp_path / "work"
    work.mkdir()
    taosr1 = [sys.executable, "-m", "taosr1_plugins.cli"]

    run_ok([*taosr1, "init", "exp"], work, env)
    shown = run_ok([sys.executable, "-c", (
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

    out = run_ok([*taosr1, "run", "exp/taosr1.yaml", "--check"], work, env)
    assert "ready to run import … deploy" in out
    assert not (work / "runs").exists()
