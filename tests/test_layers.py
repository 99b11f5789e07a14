"""The package's layers: stage folders and the core never reach up into frameworks or front doors."""

from __future__ import annotations

import ast
from pathlib import Path

import taosr1_plugins

PACKAGE = Path(taosr1_plugins.__file__).parent
# the framework integrations and the two front doors (CLI, main job) are the outer layers
OUTER = ("integrations", "pipeline", "cli")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, lazy imports inside functions included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import (the package imports absolutely)"
            names.add(node.module)
    return names


def _inner_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0]
        if top not in OUTER:
            yield path


def test_no_inner_module_imports_an_outer_layer():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imports(path) if name.split(".")[:2] in (["taosr1_plugins", o] for o in OUTER)
        )
        for path in _inner_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_stage_or_core_module_imports_a_training_framework():
    frameworks = {"llamafactory", "openrlhf", "trl", "verl", "deepspeed", "ray"}
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if n.split(".")[0] in frameworks)
        for path in _inner_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_top_level_is_stage_folders_and_a_few_shared_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 12, modules
    for stage in ("core", "data", "cot", "passn", "grpo", "deploy", "evaluation", "builtin", "integrations"):
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
