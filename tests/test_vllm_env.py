"""vLLM's own environment, reached from the main one: the check that names what is missing (status 2), and the
hand-off of `taosr1 score --backend vllm` and of a deploy stage to a child process of the vLLM interpreter, where
real engines run on CPU (one at a time: three models scored in a row in one deploy stage)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.core.vllm.env import ENV_VAR, VLLMEnvironmentError, check_vllm_env, vllm_python

REPO = Path(__file__).resolve().parents[1]
ESCI = get_scheme("esci")
HERE_HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="module")
def vllm_env() -> str:
    """The vLLM environment's interpreter (make install builds .venv-vllm), checked."""
    python = vllm_python()
    if not Path(python).exists():
        pytest.skip(f"no vLLM environment at {python}: make install builds it")
    check_vllm_env(python)
    return python


def test_a_missing_interpreter_is_named():
    with pytest.raises(VLLMEnvironmentError, match="no_such_python"):
        check_vllm_env("/nowhere/no_such_python")


@pytest.mark.skipif(HERE_HAS_VLLM, reason="this environment has vLLM")
def test_the_main_environment_is_refused_naming_vllm(tmp_path, esci_records):
    """This environment as the vLLM one: `taosr1 score --backend vllm` and `taosr1 run` stop with status 2 before
    any work, naming what is missing and where."""
    with pytest.raises(VLLMEnvironmentError) as caught:
        check_vllm_env(sys.executable)
    assert "vllm is not installed" in str(caught.value) and sys.executable in str(caught.value)

    data = tmp_path / "records.jsonl"
    write_jsonl(data, esci_records[:2])
    env = {**os.environ, ENV_VAR: sys.executable}
    score = subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "score", "--model", "smollm2", "--data",
                            str(data), "--out", str(tmp_path / "s.jsonl"), "--backend", "vllm"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert score.returncode == 2 and "vllm is not installed" in score.stderr, score.stderr
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "s.jsonl.partial").exists()

    config = REPO / "configs" / "quickstart.yaml"
    run = subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "run", str(config), "--check", "--set",
                          "deploy.backend=vllm", "--set", f"vllm_python={tmp_path / 'no_such_python'}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "vllm_python" in run.stderr and "no_such_python" in run.stderr, run.stderr


@pytest.mark.skipif(HERE_HAS_VLLM, reason="this environment has vLLM: nothing is handed off")
def test_ray_scoring_with_vllm_checks_ray_in_the_vllm_environment(tmp_path, esci_records):
    """`score --executor ray --backend vllm` starts Ray from the vLLM interpreter (its actors run there): an
    environment without Ray is refused before any work, naming it; without --executor ray Ray is not asked for."""
    import venv

    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)  # an interpreter with no packages at all
    python = str(bare / "bin" / "python")
    data = tmp_path / "records.jsonl"
    write_jsonl(data, esci_records[:2])
    out = tmp_path / "s.jsonl"
    result = subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "score", "--model", "smollm2", "--data",
                             str(data), "--out", str(out), "--backend", "vllm", "--executor", "ray"],
                            capture_output=True, text=True, env={**os.environ, ENV_VAR: python}, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "ray is not installed" in result.stderr and "vllm is not installed" in result.stderr, result.stderr
    assert not out.exists() and not out.with_name(out.name + ".parts").exists()
    with pytest.raises(VLLMEnvironmentError) as local_only:
        check_vllm_env(python)
    assert "vllm is not installed" in str(local_only.value) and "ray is not" not in str(local_only.value)


@pytest.mark.slow
def test_score_cli_runs_in_the_vllm_environment(vllm_env, smollm2_dir, esci_records, tmp_path):
    """From the main environment: the command runs again in the vLLM one and agrees with the hf backend here."""
    from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records

    data = tmp_path / "records.jsonl"
    write_jsonl(data, esci_records[:8])
    result = subprocess.run([sys.executable, "-m", "taosr1_plugins.cli", "score", "--model", str(smollm2_dir),
                             "--data", str(data), "--out", str(tmp_path / "vllm.jsonl"), "--backend", "vllm",
                             "--explain", "--max-explain-tokens", "8", "--no-progress"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ours = read_scores(tmp_path / "vllm.jsonl").rows
    hf = read_scores(score_records(smollm2_dir, esci_records[:8], tmp_path / "hf.jsonl",
                                   ScoreSettings(device="cpu", explain="always", max_explain_tokens=8,
                                                 progress=False))).rows
    for row, theirs in zip(ours, hf):
        assert row.id == theirs.id and row.label == theirs.label
        assert row.probs == pytest.approx(theirs.probs, abs=2e-3)
        assert row.explanation == theirs.explanation


def _engine_cores(root) -> set[int]:
    """The vLLM engine-core processes below psutil process ``root`` (vLLM titles them VLLM::EngineCore)."""
    found = set()
    for process in root.children(recursive=True):
        try:
            if "EngineCore" in " ".join(process.cmdline()) or "EngineCore" in process.name():
                found.add(process.pid)
        except Exception:  # ended while being looked at
            pass
    return found


@pytest.mark.slow
def test_deploy_stage_runs_one_engine_at_a_time(vllm_env, smollm2_dir, esci_records, tmp_path):
    """Three trained models scored in a row by one deploy stage (in a child of the vLLM interpreter, as `taosr1 run`
    hands it over): each engine core is watched from here, and no two are ever alive together."""
    import psutil

    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.stage_process import run_stage_in_process, stage_python

    run_dir = tmp_path / "run"
    for stage in ("sft", "dpo", "grpo"):  # three model folders: three engines
        (run_dir / stage).mkdir(parents=True)
        (run_dir / stage / "model").symlink_to(smollm2_dir, target_is_directory=True)
    write_jsonl(run_dir / "data" / "dev.jsonl", esci_records[:8])
    write_jsonl(run_dir / "data" / "test.jsonl", esci_records[8:14])
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        f"run_dir: {run_dir}\nformat: answer_first\ndata: {{source: esci, input: unused.csv}}\n"
        "deploy: {backend: vllm, batch_size: 4, options: {max_model_len: 1024}}\n"
    )
    config = load_config(config_path)
    python = stage_python(config, "deploy")
    assert python is not None and not HERE_HAS_VLLM

    seen: list[set[int]] = []
    done = threading.Event()

    def watch() -> None:
        me = psutil.Process()
        while not done.is_set():
            seen.append(_engine_cores(me))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outputs = run_stage_in_process("deploy", config, python)
    finally:
        done.set()
        watcher.join()
    assert set(outputs["test"]) == {"SFT-CoT", "+DPO", "+GRPO"}
    assert max(len(alive) for alive in seen) == 1  # never two engines' processes at once
    assert len(set().union(*seen)) == 3  # one engine per model, each started once
    for stage in ("sft", "dpo", "grpo"):
        assert len((run_dir / "deploy" / f"test_scores_{stage}.jsonl").read_text().splitlines()) == 6
