"""docs/gpu.md's OpenRLHF environment installs as written (issue 29 item 1): its commands, read from the page,
against the installed OpenRLHF's own metadata. flash-attn ships only as a source distribution whose setup.py
imports torch, so it must come after torch and be built with --no-build-isolation, before the package that
requires it."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

REPO = Path(__file__).resolve().parents[1]
OPENRLHF_PIP = ".venv-openrlhf/bin/pip"

pytest.importorskip("openrlhf")  # installed --no-deps in the main environment: its metadata is what we read


def pip_installs(text: str) -> list[list[str]]:
    """The argument lists of every `.venv-openrlhf/bin/pip install ...` line, in page order (comments stripped)."""
    commands = []
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line.startswith(f"{OPENRLHF_PIP} install"):
            commands.append(shlex.split(line, comments=True)[2:])
    return commands


def requirement(args: list[str], name: str) -> Requirement | None:
    for arg in args:
        try:
            req = Requirement(arg)
        except InvalidRequirement:
            continue
        if req.name.lower().replace("_", "-") == name:
            return req
    return None


def position(commands: list[list[str]], predicate) -> int:
    found = [i for i, args in enumerate(commands) if predicate(args)]
    assert found, "command not in docs/gpu.md's OpenRLHF steps"
    return found[0]


def openrlhf_pin(name: str, extra: str | None = None) -> str:
    for line in importlib.metadata.requires("openrlhf") or []:
        req = Requirement(line)
        wanted_extra = req.marker is not None and req.marker.evaluate({"extra": extra or ""})
        if req.name == name and (req.marker is None if extra is None else wanted_extra):
            return str(req.specifier)
    raise AssertionError(f"openrlhf requires no {name}")


def test_docs_install_torch_then_flash_attn_without_isolation_then_the_package():
    commands = pip_installs((REPO / "docs/gpu.md").read_text())
    flash = position(commands, lambda args: requirement(args, "flash-attn") is not None)
    package = position(commands, lambda args: '.[openrlhf]' in args)
    # torch arrives with the vLLM release OpenRLHF's [vllm] extra pins (vLLM pins its torch)
    torch = position(commands, lambda args: requirement(args, "vllm") is not None or requirement(args, "torch") is not None)
    assert torch < flash < package
    assert "--no-build-isolation" in commands[flash]
    # without isolation the build uses this environment's tools: installed before it
    tools = position(commands, lambda args: {"packaging", "wheel", "setuptools"} <= set(args))
    assert tools < flash
    # the versions the package will ask for, so pip keeps what was installed instead of replacing it
    assert str(requirement(commands[flash], "flash-attn").specifier) == openrlhf_pin("flash-attn")
    vllm = requirement(commands[torch], "vllm")
    assert vllm is not None and str(vllm.specifier) == openrlhf_pin("vllm", extra="vllm")


def test_our_openrlhf_extra_pins_the_openrlhf_whose_metadata_the_docs_are_read_against():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [Requirement(r) for r in extras["openrlhf"]]
    assert pin.name == "openrlhf" and importlib.metadata.version("openrlhf") in pin.specifier


def test_the_gpu_config_does_not_give_the_broken_one_line_install():
    text = (REPO / "configs/gpu_qwen.yaml").read_text()
    commands = pip_installs(text)
    assert commands == [] or commands == pip_installs((REPO / "docs/gpu.md").read_text())
    assert not re.search(r"venv-openrlhf/bin/pip install -e \"\.\[openrlhf\]\"\s*(#|$)", text.split("run_dir:")[0])
