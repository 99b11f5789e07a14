"""The launch command checked by OpenRLHF's own parser, as benchmarks/gpu_smoke.sh step 4 runs it (issue 29 item 9):
`python -m taosr1_plugins.integrations.openrlhf.parser LAUNCH_LOG` accepts the DRY_RUN command and refuses one
with an argument OpenRLHF 0.11.2 does not have."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARSER = [sys.executable, "-m", "taosr1_plugins.integrations.openrlhf.parser"]

pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")


@pytest.fixture(scope="module")
def launch_log(tmp_path_factory) -> Path:
    from test_grpo_recipe import SCRIPT, _prepare_with

    tmp = tmp_path_factory.mktemp("parser")
    grpo_dir = _prepare_with(tmp, {})
    log = tmp / "launch.log"
    log.write_text(subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=True, env={
        **os.environ, "DRY_RUN": "1", "POLICY": "/models/dpo", "GRPO_DIR": str(grpo_dir), "NNODES": "2"}).stdout)
    return log


def test_the_dry_run_command_parses(launch_log):
    result = subprocess.run([*PARSER, str(launch_log)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "parsed by OpenRLHF's parser" in result.stdout and "actor.num_nodes=2" in result.stdout


def test_an_argument_openrlhf_does_not_have_is_refused(launch_log, tmp_path):
    broken = tmp_path / "launch.log"
    broken.write_text(launch_log.read_text().replace("--ckpt.max_num", "--ckpt.max_count"))
    result = subprocess.run([*PARSER, str(broken)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "--ckpt.max_count" in result.stderr


def test_the_smoke_script_parses_the_launch_log_it_printed():
    text = (REPO / "benchmarks" / "gpu_smoke.sh").read_text()
    assert '-m taosr1_plugins.integrations.openrlhf.parser "$RUN/grpo/launch.log"' in text
