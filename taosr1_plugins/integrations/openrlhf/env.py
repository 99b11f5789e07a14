"""Check the OpenRLHF environment before the GRPO stage submits a Ray job into it.

OpenRLHF 0.11.2 pins transformers 5.15.0 while LLaMA-Factory 0.9.5 needs <= 5.6.0, so OpenRLHF lives in an
environment of its own (``grpo.options.python``, see docs/gpu.md). A job submitted into a broken one fails minutes
later on a worker, or, worse, trains on zero rewards; this check runs that interpreter once, in the
environment the Ray workers get (``PYTHONPATH`` = the checkout, ``TAOSR1_REWARD_CONFIG``), and says what is
missing. It only looks packages up (no CUDA initialisation), except the reward, which it really loads.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.errors import UserError

# the flags recipes/openrlhf/grpo_taosr1.sh passes are checked against this release's parser
OPENRLHF_VERSION = "0.11.2"
# what train_ppo_ray needs on a GPU node besides OpenRLHF itself
GPU_PACKAGES = ("ray", "vllm", "deepspeed", "torch")
ALL_PACKAGES = ("openrlhf", *GPU_PACKAGES)

_PROBE = r"""
import importlib.metadata as md, importlib.util, json, sys
found = {}
for name in sys.argv[1].split(","):
    try:
        found[name] = md.version(name) if importlib.util.find_spec(name) else None
    except Exception:
        found[name] = None
reward = None
try:
    import taosr1_plugins
    from taosr1_plugins.grpo.reward import check_reward_setup
    check_reward_setup()
    reward = {"ok": True, "package": taosr1_plugins.__file__}
except Exception as exc:
    reward = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
print(json.dumps({"python": sys.executable, "version": sys.version.split()[0], "packages": found, "reward": reward}))
"""


class EnvironmentCheckError(UserError):
    """The OpenRLHF environment lacks a package or cannot load our reward; the message lists every problem."""


def probe(python: str, repo: Path, reward_config: Path | None, packages: Sequence[str]) -> dict[str, Any]:
    """What ``python`` finds, run as a Ray worker would run it (``reward_config`` None: the reward defaults)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    env.pop("TAOSR1_REWARD_CONFIG", None)
    if reward_config is not None:
        env["TAOSR1_REWARD_CONFIG"] = str(reward_config)
    try:
        result = subprocess.run([python, "-c", _PROBE, ",".join(packages)], capture_output=True, text=True,
                                env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentCheckError(f"grpo.options.python {python!r} cannot be run: {exc}") from exc
    if result.returncode != 0:
        raise EnvironmentCheckError(f"grpo.options.python {python!r} failed to start:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def problems(report: dict[str, Any], repo: Path) -> list[str]:
    found = report["packages"]
    issues = [f"{name} is not installed" for name, version in found.items() if version is None]
    version = found.get("openrlhf")
    if version is not None and version != OPENRLHF_VERSION:
        issues.append(f"openrlhf {version} is installed; grpo_taosr1.sh's flags are those of {OPENRLHF_VERSION}")
    reward = report["reward"]
    if not reward["ok"]:
        issues.append(f"the reward does not load there: {reward['error']}")
    elif not Path(reward["package"]).resolve().is_relative_to(repo.resolve()):
        issues.append(f"taosr1_plugins comes from {reward['package']}, not from this checkout {repo}")
    return issues


def check_openrlhf_env(
    python: str, repo: Path, reward_config: Path | None, packages: Sequence[str] = ALL_PACKAGES
) -> dict[str, Any]:
    """The probe's report; raises EnvironmentCheckError listing every problem."""
    report = probe(python, repo, reward_config, packages)
    found = problems(report, repo)
    if found:
        raise EnvironmentCheckError(
            f"the OpenRLHF environment {report['python']} (grpo.options.python) is not ready:\n  - "
            + "\n  - ".join(found)
            + f"\nInstall it as docs/gpu.md says: pip install -e '{repo}[openrlhf]' in its own venv."
        )
    return report
