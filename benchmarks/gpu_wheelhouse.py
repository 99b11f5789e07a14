"""Build the wheelhouse benchmarks/gpu_smoke_lent.sh installs on a lent GPU machine (`make gpu-wheelhouse`).

The lent machine has CUDA torch, transformers, peft and accelerate, no package index and no network, and receives
the working tree plus at most 64 MiB of carried files. What our smoke path needs beyond what it has is small and
pure Python (pydantic and its core, pluggy, PyYAML, typer, rich, FastAPI and uvicorn for the scoring server, ...):
the requirement closure of ROOTS, each at the version this
environment runs, downloaded as wheels for CPython 3.11 and 3.12 on x86-64 Linux (the lent machine's Python is not
known in advance; pure-Python wheels are one file for all). TRL, datasets, pyarrow and scikit-learn do not fit
and are left out: the smoke script exercises what runs without them.

    python benchmarks/gpu_wheelhouse.py --out .cache/gpu_wheelhouse        # needs PyPI (pip download)
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOTS = ("pluggy", "pydantic", "pyyaml", "typer", "rich", "tqdm", "fastapi", "uvicorn", "packaging")
PYTHONS = ("3.11", "3.12")  # some pins (annotated-doc 0.0.7, ...) need 3.11 or later
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "linux_x86_64")
LIMIT_MIB = 64  # everything carried: this wheelhouse and the tiny model (benchmarks/gpu_smoke_lent.sh)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: tuple[str, ...]) -> dict[str, str]:
    """name -> installed version for ``roots`` and every requirement they pull in here (markers evaluated, no extras)."""
    found: dict[str, str] = {}
    todo = [canonical(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            continue  # an optional dependency this environment does without
        for line in md.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonical(requirement.name))
    return found


def wheelhouse_pins() -> dict[str, str]:
    # the whole closure, typing-extensions too although torch brings one: installed with --target from this folder
    # alone, pip finds every requirement here or fails, and the folder shadows whatever versions the machine has
    return dict(sorted(closure(ROOTS).items()))


def build(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    pins = wheelhouse_pins()
    specs = [f"{name}=={version}" for name, version in pins.items()]
    for python in PYTHONS:
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", python, "--implementation", "cp", *platforms, "--dest", str(out), *specs],
                       check=True)
    (out / "requirements.txt").write_text("".join(spec + "\n" for spec in specs))
    size = sum(path.stat().st_size for path in out.iterdir())
    print(f"{out}: {len(pins)} packages, {len(list(out.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB")
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/gpu_wheelhouse"))
    parser.add_argument("--list", action="store_true", help="print the pins and stop (no download)")
    args = parser.parse_args()
    if args.list:
        print("\n".join(f"{name}=={version}" for name, version in wheelhouse_pins().items()))
        return
    size = build(args.out)
    if size > LIMIT_MIB * 2**20:
        sys.exit(f"{args.out} is {size / 2**20:.1f} MiB, over the {LIMIT_MIB} MiB a lent machine receives")


if __name__ == "__main__":
    main()
