"""OpenRLHF's own argument parser for ``openrlhf.cli.train_ppo_ray``, to check a launch command without a GPU.

OpenRLHF 0.11.2 builds the parser inline in the module's ``__main__`` block, and importing the module pulls in
Ray, vLLM and DeepSpeed; so the statements of that block up to ``parse_args`` are taken from the installed
source file and run as they are (OpenRLHF's code, not a copy of it).

``python -m taosr1_plugins.integrations.openrlhf.parser LAUNCH_LOG`` parses the command recipes/openrlhf/grpo_taosr1.sh
printed with DRY_RUN=1 (the words after ``-m openrlhf.cli.train_ppo_ray``); exit status 2 names what it refused,
3 says OpenRLHF is not installed here.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import importlib.util
import os
import shlex
import sys
from pathlib import Path

ENTRY_POINT = "openrlhf.cli.train_ppo_ray"


def openrlhf_parser() -> argparse.ArgumentParser:
    spec = importlib.util.find_spec("openrlhf")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("openrlhf is not installed")
    source_path = Path(spec.submodule_search_locations[0]) / "cli" / "train_ppo_ray.py"
    tree = ast.parse(source_path.read_text())
    main = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    statements = []
    for statement in main.body:
        if "parse_args" in ast.unparse(statement):
            break
        statements.append(statement)
    namespace = {"argparse": argparse, "datetime": datetime.datetime, "os": os}
    exec(compile(ast.Module(body=statements, type_ignores=[]), str(source_path), "exec"), namespace)
    return namespace["parser"]


def trainer_arguments(command: list[str]) -> list[str]:
    """The words of a launch command that OpenRLHF's trainer parses (after ``-m openrlhf.cli.train_ppo_ray``)."""
    for i in range(len(command) - 1):
        if command[i] == "-m" and command[i + 1] == ENTRY_POINT:
            return command[i + 2:]
    raise ValueError(f"no `-m {ENTRY_POINT}` in the command")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        parser = openrlhf_parser()
    except ModuleNotFoundError:
        print("skipped: openrlhf is not installed here")
        return 3
    lines = [line for line in Path(args[0]).read_text().splitlines() if ENTRY_POINT in line]
    if not lines:
        print(f"{args[0]}: no `{ENTRY_POINT}` command in it", file=sys.stderr)
        return 2
    parsed = vars(parser.parse_args(trainer_arguments(shlex.split(lines[-1]))))  # argparse exits 2 on a bad one
    print(f"parsed by OpenRLHF's parser: {len(parsed)} arguments, actor.num_nodes={parsed.get('actor.num_nodes')}, "
          f"data.max_len={parsed.get('data.max_len')}, rollout.max_new_tokens={parsed.get('rollout.max_new_tokens')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
