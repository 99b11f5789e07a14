"""Run a main-job stage in a fresh Python process, so that the GPU is empty again when it ends.

A model loaded by one stage (eval loads each trained 7B model in turn; pass@N and deploy start a vLLM
engine) is only reliably given back when its process exits: CUDA caches, vLLM's workers and NCCL state
outlive ``del model``. vLLM refuses to start when less than ``gpu_memory_utilization`` of the GPU is free
and DPO's torchrun wants every GPU, so with ``isolate_stages`` (default: on when CUDA is available) each
model stage runs as ``python -m taosr1_plugins.pipeline.stage_process REQUEST`` and the main process
never holds a model. The child rebuilds the config, runs the stage and writes its outcome as JSON; the
parent turns that back into the stage's outputs or its exception (a DataError stays a DataError).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from taosr1_plugins.errors import DataError, UserError
from taosr1_plugins.pipeline.config import RunConfig

# the stages that load a model into the process that runs them (LLaMA-Factory stages start their own
# process already; with sft/dpo.framework trl they train in-process); cot with `cot.teacher: hf` holds its
# teacher on the GPU until its process ends, which would keep vLLM and torchrun from starting later
MODEL_STAGES = ("cot", "sft", "passn", "dpo", "grpo", "post_cot", "eval", "deploy")


class StageProcessError(RuntimeError):
    pass


def isolation_wanted(config: RunConfig) -> bool:
    if config.isolate_stages is not None:
        return config.isolate_stages
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()  # asks the driver; creates no CUDA context in this process


def vllm_stages(config: RunConfig) -> list[str]:
    """The model stages whose backend is vLLM."""
    chosen = {"passn": config.passn.backend, "deploy": config.deploy.backend, "eval": config.eval.backend}
    return [stage for stage, backend in chosen.items() if backend == "vllm"]


def stage_python(config: RunConfig, name: str) -> str | None:
    """The interpreter of the vLLM environment when stage ``name`` uses vLLM and this process has none (the main
    environment never imports vLLM: core/vllm/env.py); None: the stage runs as it would otherwise."""
    from taosr1_plugins.core.vllm.env import vllm_importable, vllm_python

    if name not in vllm_stages(config) or vllm_importable():
        return None
    return vllm_python(config.vllm_python, config.base_dir)


def run_stage_in_process(name: str, config: RunConfig, python: str | None = None) -> dict[str, Any]:
    """Run stage ``name`` in a child process (of ``python``, else this interpreter); returns its outputs or raises
    what it raised."""
    return _in_process(name, config, {"stage": name}, python)


def check_training_in_process(config: RunConfig, stages: list[str]) -> None:
    """The training backends' preflight checks (which may import their frameworks) in a child process."""
    _in_process("preflight", config, {"check": stages})


def _in_process(name: str, config: RunConfig, job: dict[str, Any], python: str | None = None) -> dict[str, Any]:
    from taosr1_plugins.training.backend import DryRunStop, SettingError

    with tempfile.TemporaryDirectory(prefix=f"taosr1-{name}-") as tmp:
        request, outcome = Path(tmp) / "request.json", Path(tmp) / "outcome.json"
        request.write_text(json.dumps({
            **job,
            "config": config.model_dump(mode="json"),
            "base_dir": str(config.base_dir),
            "outcome": str(outcome),
        }))
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        returncode = subprocess.run([python or sys.executable, "-m", "taosr1_plugins.pipeline.stage_process", str(request)],
                                    env=env).returncode
        if not outcome.exists():
            raise StageProcessError(f"stage {name!r} died in its own process (exit status {returncode}) before reporting")
        result = json.loads(outcome.read_text())
    status = result["status"]
    if status == "done":
        return result["outputs"]
    if status == "dry_run":
        raise DryRunStop(result["note"])
    if status == "data_error":
        raise DataError(result["file"], result["line"], result["field"], result["message"])
    if status == "setting_error":
        raise SettingError(result["field"], result["message"], result["stage"])
    if status == "user_error":  # any other refusal of the user's input or environment: still one line, exit 2
        raise UserError(result["message"])
    raise StageProcessError(f"stage {name!r} failed in its own process: {result['error']}\n{result['traceback']}")


def _child(request_path: str) -> int:
    from taosr1_plugins.pipeline.context import RunContext
    from taosr1_plugins.pipeline.training import check_training
    from taosr1_plugins.pipeline.stages import STAGES
    from taosr1_plugins.training.backend import DryRunStop, SettingError

    from taosr1_plugins.core.noise import hide_known_noise

    hide_known_noise()  # this process loads a model: no "Loading weights" bar, no known third-party deprecation
    request = json.loads(Path(request_path).read_text())
    outcome = Path(request["outcome"])
    config = RunConfig.model_validate(request["config"])
    config.base_dir = Path(request["base_dir"])
    try:
        if "check" in request:
            check_training(config, request["check"])
            result: dict[str, Any] = {"status": "done", "outputs": {}}
        else:
            stage = next(stage for stage in STAGES if stage.name == request["stage"])
            result = {"status": "done", "outputs": stage.run(RunContext(config))}
    except DryRunStop as stop:
        result = {"status": "dry_run", "note": str(stop)}
    except DataError as exc:
        result = {"status": "data_error", "file": exc.file, "line": exc.line, "field": exc.field, "message": exc.message}
    except SettingError as exc:
        result = {"status": "setting_error", "field": exc.field, "message": exc.message, "stage": exc.stage}
    except UserError as exc:
        result = {"status": "user_error", "message": str(exc)}
    except Exception as exc:
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    outcome.write_text(json.dumps(result, default=str))
    return 0 if result["status"] in ("done", "dry_run") else 1


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
