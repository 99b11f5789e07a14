"""Installing a fixture plugin as a user would (pip), without touching the venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def installed_plugin_env(fixture: Path, work: Path) -> dict:
    """pip-install the plugin at ``fixture`` into ``work/site`` (a --target directory, so the venv stays clean) and
    return an environment that puts it on sys.path."""
    source = work / "src"
    shutil.copytree(fixture, source)  # building writes egg-info/build beside the sources: not in the repo
    target = work / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=False, capture_output=True, text=True,
    )
    if install.returncode != 0:
        pytest.fail(f"pip install of {fixture.name} failed:\n{install.stdout}\n{install.stderr}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return env
