"""patches/llamafactory-0.9.5-plugins.patch: it applies cleanly to the pristine pinned release, our
applier is idempotent and reversible, and the patched launcher loads `llamafactory.plugins` entry points."""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taosr1_plugins.integrations.llamafactory.patching import (
    PatchError,
    PatchState,
    find_patch_file,
    installed_llamafactory_root,
    parse_patch,
    patch_tree,
)

PATCH = find_patch_file()
PATCHED_FILES = [fp.path for fp in parse_patch(PATCH.read_text())]


def record_hashes(site: Path) -> dict[str, str]:
    """sha256 of each installed file as pip recorded it in llamafactory-0.9.5.dist-info/RECORD."""
    with open(site / "llamafactory-0.9.5.dist-info" / "RECORD", newline="") as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if row and row[1]}


def file_hash(path: Path) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


@pytest.fixture
def pristine_copy(tmp_path) -> Path:
    """A copy of the installed llamafactory, brought back to the release's files by reversing the patch."""
    site = installed_llamafactory_root()
    copy = tmp_path / "site"
    shutil.copytree(site / "llamafactory", copy / "llamafactory", ignore=shutil.ignore_patterns("__pycache__"))
    patch_tree(copy, PATCH, revert=True)
    recorded = record_hashes(site)
    for path in PATCHED_FILES:
        assert file_hash(copy / path) == recorded[path], f"{path} is not the pristine 0.9.5 file"
    return copy


@pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch not installed")
def test_patch_applies_cleanly_with_gnu_patch_and_matches_our_applier(pristine_copy, tmp_path):
    gnu = tmp_path / "gnu"
    shutil.copytree(pristine_copy, gnu)
    gnu_patch = ["patch", "-p1", "--forward", "-i", str(PATCH)]
    dry = subprocess.run([*gnu_patch, "--dry-run"], cwd=gnu, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "offset" not in dry.stdout and "fuzz" not in dry.stdout  # exact context at the stated lines
    real = subprocess.run(gnu_patch, cwd=gnu, capture_output=True, text=True)
    assert real.returncode == 0, real.stdout + real.stderr
    states = patch_tree(pristine_copy, PATCH)
    assert set(states.values()) == {PatchState.UNAPPLIED}
    for path in PATCHED_FILES:
        assert (pristine_copy / path).read_bytes() == (gnu / path).read_bytes()


def test_our_applier_is_idempotent_and_reversible(pristine_copy):
    recorded = record_hashes(installed_llamafactory_root())
    assert set(patch_tree(pristine_copy, PATCH, check=True).values()) == {PatchState.UNAPPLIED}
    patch_tree(pristine_copy, PATCH)
    patched = {path: (pristine_copy / path).read_bytes() for path in PATCHED_FILES}
    assert set(patch_tree(pristine_copy, PATCH).values()) == {PatchState.APPLIED}  # second apply: no-op
    assert {path: (pristine_copy / path).read_bytes() for path in PATCHED_FILES} == patched
    assert b"\nimport torchaudio\n" not in patched["llamafactory/data/mm_plugin.py"]  # only the lazy one is left
    patch_tree(pristine_copy, PATCH, revert=True)
    patch_tree(pristine_copy, PATCH, revert=True)  # reverting a pristine tree: no-op
    assert all(file_hash(pristine_copy / path) == recorded[path] for path in PATCHED_FILES)


def test_locally_changed_file_is_refused_and_nothing_is_written(pristine_copy):
    launcher = pristine_copy / "llamafactory" / "launcher.py"
    launcher.write_text(launcher.read_text().replace("def launch():", "def launch_changed():"))
    mm_plugin_before = (pristine_copy / "llamafactory" / "data" / "mm_plugin.py").read_bytes()
    with pytest.raises(PatchError, match="launcher.py: neither pristine"):
        patch_tree(pristine_copy, PATCH)
    assert (pristine_copy / "llamafactory" / "data" / "mm_plugin.py").read_bytes() == mm_plugin_before


def test_patched_launcher_loads_plugin_entry_points(pristine_copy, tmp_path):
    """A probe distribution declares a `llamafactory.plugins` entry point; both ways the patched CLI
    starts training (launch() and the __main__ block torchrun runs) call it before parsing arguments."""
    site = pristine_copy
    patch_tree(site, PATCH)
    (site / "lf_plugin_probe.py").write_text(
        "import os, llamafactory\n"
        "def register():\n"
        "    with open(os.environ['PROBE_MARKER'], 'a') as fh:\n"
        "        fh.write(llamafactory.__file__ + '\\n')\n"
    )
    dist_info = site / "lf_plugin_probe-0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lf-plugin-probe\nVersion: 0.0\n")
    (dist_info / "entry_points.txt").write_text("[llamafactory.plugins]\nprobe = lf_plugin_probe:register\n")

    marker = tmp_path / "marker.txt"
    env = {**os.environ, "PYTHONPATH": str(site), "PROBE_MARKER": str(marker)}
    runs = {
        "launch": [
            sys.executable,
            "-c",
            "import sys; from llamafactory.cli import main; sys.argv[1:] = ['train', '-h']; main()",
        ],
        "torchrun_script": [sys.executable, str(site / "llamafactory" / "launcher.py"), "-h"],
    }
    for name, command in runs.items():
        marker.unlink(missing_ok=True)
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
        assert "--model_name_or_path" in result.stdout  # it went on to LLaMA-Factory's argument parser
        assert marker.read_text().splitlines() == [str(site / "llamafactory" / "__init__.py")], name


def test_cli_check_reports_the_installed_state():
    from taosr1_plugins.cli import app

    states = patch_tree(installed_llamafactory_root(), PATCH, check=True)
    result = CliRunner().invoke(app, ["patch", "llamafactory", "--check"])
    expected = 0 if set(states.values()) == {PatchState.APPLIED} else 1
    assert result.exit_code == expected, result.output
    for path, state in states.items():
        assert f"{state}: {installed_llamafactory_root() / path}" in result.output
