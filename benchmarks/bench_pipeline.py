"""End to end: pairs per second of every stage of one finished main-job run, and their ratios.

    .venv/bin/python benchmarks/bench_pipeline.py [RUN_DIR ...]     (default: runs/quickstart)

Every figure comes from one run's manifest and files (stage wall time, what each stage processed), so the
ratios compare stages measured on the same machine under the same load. The unit differs per stage and is
printed: training examples seen (SFT, DPO), sampled responses (pass@N, GRPO completions), generated
evaluation answers, and scored pairs (deploy: one forward pass each). The ratio column is each stage's
rate over the deploy stage's scoring rate. Baselines (`taosr1 baselines`) are listed when the run has them.
A run of configs/quickstart.yaml (`make demo`) takes about half an hour on 2 CPU cores; this script only reads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def _examples_seen(run: Path, stage: str, outputs: dict) -> int:
    recipe = run / stage / "train.yaml"
    if not recipe.exists():  # trained in-process (TRL): no LLaMA-Factory recipe; the count the stage recorded (0: none)
        return int(outputs.get("examples_seen") or 0)
    args = yaml.safe_load(recipe.read_text())
    batch = int(args.get("per_device_train_batch_size", 1)) * int(args.get("gradient_accumulation_steps", 1))
    return int(outputs.get("steps") or 0) * batch


def stage_work(run: Path) -> list[tuple[str, str, int, float]]:
    """(stage, unit, count, seconds) for every finished stage that processes pairs."""
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    rows = []

    def add(name: str, unit: str, count: int) -> None:
        entry = stages.get(name, {})
        if entry.get("status") == "done" and entry.get("seconds") and count:
            rows.append((name, unit, count, float(entry["seconds"])))

    outputs = {name: entry.get("outputs", {}) for name, entry in stages.items()}
    add("cot", "teacher traces", outputs.get("cot", {}).get("total", 0))
    for name in ("sft", "dpo"):
        if name in outputs:
            add(name, "training examples seen", _examples_seen(run, name, outputs[name]))
    add("passn", "sampled responses", outputs.get("passn", {}).get("samples", 0))
    grpo_summary = run / "grpo" / "summary.json"
    if grpo_summary.exists():
        summary = json.loads(grpo_summary.read_text())
        completions = summary.get("groups_generated", 0) * summary.get("num_generations", 0)
        if completions:
            add("grpo", "rollout completions", completions)
        else:  # a summary written before it recorded num_generations
            add("grpo", "rollout groups", summary.get("groups_generated", 0))
    add("eval", "generated answers", sum(m.get("n", 0) for m in outputs.get("eval", {}).values() if isinstance(m, dict)))
    deploy = run / "deploy"
    add("deploy", "scored pairs", sum(_lines(p) for p in deploy.glob("*_scores*.jsonl")))
    return rows


def baseline_work(run: Path) -> list[tuple[str, str, int, float]]:
    rows = []
    for result in sorted((run / "baselines").glob("*/result.json")):
        data = json.loads(result.read_text())
        if data.get("seconds"):
            unit = "test pairs (+ training)"
            rows.append((f"baseline {data['baseline']}", unit, int(data["metrics"]["n"]), float(data["seconds"])))
    return rows


def report(run: Path) -> None:
    rows = stage_work(run) + baseline_work(run)
    reference = next((count / seconds for name, _, count, seconds in rows if name == "deploy"), None)
    print(f"\n{run}  (rates from one run; ratio = rate / deploy scoring rate)")
    print(f"{'stage':<24} {'unit':<26} {'count':>7} {'seconds':>8} {'per s':>8} {'ratio':>8}")
    for name, unit, count, seconds in rows:
        rate = count / seconds
        ratio = f"{rate / reference:.3f}" if reference else "-"
        print(f"{name:<24} {unit:<26} {count:>7} {seconds:>8.1f} {rate:>8.3f} {ratio:>8}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, default=[REPO / "runs" / "quickstart"])
    args = parser.parse_args(argv)
    missing = [run for run in args.runs if not (run / "manifest.json").exists()]
    if missing:
        parser.error(f"no finished run in {', '.join(map(str, missing))}: run `taosr1 run CONFIG` (e.g. make demo) first")
    for run in args.runs:
        report(run)


if __name__ == "__main__":
    main()
