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


# Ray is OpenRLHF's cluster runtime, and also (Ray Data) the engine that spreads batch scoring over a cluster, the
# way core/vllm/ holds the generation engine: that one folder of the deploy stage may import it, lazily
ENGINE_FOLDERS = {"ray": "deploy/ray_data/"}


def test_no_stage_or_core_module_imports_a_training_framework():
    frameworks = {"llamafactory", "openrlhf", "trl", "verl", "deepspeed", "ray"}

    def allowed(path: Path, name: str) -> bool:
        folder = ENGINE_FOLDERS.get(name.split(".")[0])
        return folder is not None and str(path.relative_to(PACKAGE)).startswith(folder)

    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in _imports(path) if n.split(".")[0] in frameworks and not allowed(path, n)
        )
        for path in _inner_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_top_level_is_stage_folders_and_a_few_shared_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 12, modules
    for stage in ("core", "data", "cot", "passn", "grpo", "deploy", "evaluation", "builtin", "integrations"):
        assert (PACKAGE / stage / "__init__.py").is_file(), stage


def test_the_main_job_reaches_a_training_framework_only_through_the_backend_hook():
    """No module under pipeline/ or grpo/ imports a framework, a framework's backend, launcher or trainer: the
    training stages look their framework up with `training.backend.get_backend`. What they may import from
    integrations/ are the dataset writers the export and pairs stages call (LLaMA-Factory's and OpenRLHF's file
    layouts, written by our own code)."""
    frameworks = {"llamafactory", "openrlhf", "trl", "verl", "deepspeed", "ray", "vllm"}
    dataset_writers = {"taosr1_plugins.integrations", "taosr1_plugins.integrations.llamafactory.export"}
    offenders = {}
    for folder in ("pipeline", "grpo"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            names = _imports(path)
            bad = sorted(n for n in names if n.split(".")[0] in frameworks
                         or (n.startswith("taosr1_plugins.integrations") and n not in dataset_writers))
            source = path.read_text(encoding="utf-8")
            # a launch names its command as a string literal
            bad += [word for word in ('"llamafactory-cli"', '"torchrun"', "openrlhf.cli", "grpo_taosr1.sh") if word in source]
            if bad:
                offenders[str(path.relative_to(PACKAGE))] = bad
    assert offenders == {}
