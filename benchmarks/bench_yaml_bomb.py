"""Refusing a YAML alias bomb against loading the shipped quickstart config.

    .venv/bin/python benchmarks/bench_yaml_bomb.py [--levels 6]

A config of a few KB whose ``cot.options`` nest aliases ``--levels`` deep, 10 per level (10⁶ leaves at 6),
cost 40-75 s before it failed, in pydantic's validation of the expanded tree. ``core.yaml_load`` measures
the node graph before constructing it; this prints how long the refusal takes against loading the
quickstart config (a ratio well below 1 whatever ``--levels``: the refusal grows with the file, not with
the expansion) and the same for a circular anchor. Absolute times depend on the machine; the ratio does not.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from taosr1_plugins.core.yaml_load import YamlLimitError, safe_load

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def bomb(levels: int, width: int = 10) -> str:
    lines = ["cot:", "  options:", f"    l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def best_of(run, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def refused(text: str) -> None:
    try:
        safe_load(text)
    except YamlLimitError:
        return
    raise AssertionError("not refused")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, default=6, help="alias levels of 10 each (10**levels leaves)")
    levels = parser.parse_args().levels
    quickstart = QUICKSTART.read_text(encoding="utf-8")
    baseline = best_of(lambda: safe_load(quickstart))
    cases = {f"alias bomb, 10^{levels} leaves ({len(bomb(levels)):,} bytes)": bomb(levels),
             "circular anchor": "sft:\n  overrides: &ov {learning_rate: 1.0e-4, self: *ov}\n"}
    print(f"loading configs/quickstart.yaml: {baseline * 1000:.2f} ms")
    for name, text in cases.items():
        took = best_of(lambda: refused(text))
        print(f"{name:<40} refused in {took * 1000:.2f} ms   ratio to the quickstart load: {took / baseline:.2f}")


if __name__ == "__main__":
    main()
