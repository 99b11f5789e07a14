"""Batch scoring: the local scorer against Ray Data with 1 and 2 actors, on the same model and pairs, in one run.

    .venv/bin/python benchmarks/bench_batch_scoring.py [--model DIR] [--pairs 96] [--batch-size 8] [--part-rows 16]

Prints, measured in this run on a local Ray cluster of 2 CPUs:
- pairs/s of `taosr1 score` (local executor) and of `--executor ray` with 1 and 2 actors, each end to end (model
  loads included), and their ratios to the local scorer;
- Ray's fixed start-up cost (starting the local cluster) and the per-actor model load (measured locally);
- peak resident memory of each scoring actor (sampled from outside while it runs);
- the largest difference of a probability between the Ray and the local rows (the tolerance the tests use);
- the wall time for 10 million pairs on N actors, EXTRAPOLATED from the measured per-actor rate (1-actor run less
  the model load), or from ``--actor-rate`` (pairs/s of one GPU actor measured elsewhere): an extrapolation,
  not a measurement; it assumes actors scale linearly and that reading and writing keep up.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class ActorMemory:
    """Peak RSS per scoring actor process, sampled every 0.1 s (from outside: the actors report nothing)."""

    def __init__(self, ignore: set[int] = frozenset()) -> None:
        self.peak: dict[int, int] = {}
        self.ignore = ignore  # an earlier run's actors, still being torn down
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                if (proc.info["pid"] not in self.ignore and proc.info["memory_info"]
                        and "PairScorer" in " ".join(proc.info["cmdline"] or [])):
                    self.peak[proc.info["pid"]] = max(self.peak.get(proc.info["pid"], 0), proc.info["memory_info"].rss)
            self._stop.wait(0.1)

    def __enter__(self) -> ActorMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def max_prob_difference(a: Path, b: Path) -> float:
    import json

    left = {row["id"]: row["probs"] for row in map(json.loads, a.read_text().splitlines())}
    right = {row["id"]: row["probs"] for row in map(json.loads, b.read_text().splitlines())}
    assert left.keys() == right.keys(), "the two outputs hold different pairs"
    return max(abs(p - right[i][k]) for i, probs in left.items() for k, p in probs.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: SmolLM2-135M-Instruct, prepared offline)")
    parser.add_argument("--pairs", type=int, default=96, help="from the ESCI sample that ships (200 at most)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--part-rows", type=int, default=16)
    parser.add_argument("--actor-rate", type=float, default=None,
                        help="pairs/s of one actor measured elsewhere (a GPU): extrapolate from it instead")
    parser.add_argument("--extrapolate-actors", default="1,8,32", help="N actors for the 10M-pair extrapolation")
    args = parser.parse_args(argv)

    os.environ.pop("RAY_ADDRESS", None)
    import ray

    from taosr1_plugins.core.models import prepare_smollm2
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.data.samples import esci_sample_path
    from taosr1_plugins.deploy.config import RaySettings
    from taosr1_plugins.deploy.scoring import ScoreSettings, load_scorer, records_scheme, score_records

    model = args.model or str(prepare_smollm2(progress=False))
    records = list(import_records("esci", esci_sample_path()))[: args.pairs]
    n = len(records)
    base = ScoreSettings(device="cpu", batch_size=args.batch_size, progress=False)
    print(f"model {model}; {n} ESCI pairs; batch size {args.batch_size}; part rows {args.part_rows}; "
          f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        load_scorer(model, records_scheme(records), base)  # untimed: reads the weights into the page cache
        start = time.perf_counter()
        load_scorer(model, records_scheme(records), base)
        load_s = time.perf_counter() - start

        start = time.perf_counter()
        score_records(model, records, folder / "local.jsonl", base)
        local_s = time.perf_counter() - start

        start = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        startup_s = time.perf_counter() - start
        try:
            runs: dict[int, tuple[float, ActorMemory]] = {}
            for actors in (1, 2):
                settings = base.model_copy(update={"executor": "ray",
                                                   "ray": RaySettings(actors=actors, part_rows=args.part_rows)})
                earlier = {pid for _, memory in runs.values() for pid in memory.peak}
                with ActorMemory(earlier) as memory:
                    start = time.perf_counter()
                    score_records(model, records, folder / f"ray{actors}.jsonl", settings)
                    runs[actors] = (time.perf_counter() - start, memory)
        finally:
            ray.shutdown()
        diff = max(max_prob_difference(folder / "local.jsonl", folder / f"ray{a}.jsonl") for a in runs)

    local_rate = n / local_s
    print(f"\nlocal scorer:   {local_rate:7.2f} pairs/s ({local_s:.1f} s, model load {load_s:.1f} s included)")
    for actors, (seconds, memory) in runs.items():
        rate = n / seconds
        peaks = ", ".join(f"{rss / 2**20:.0f} MiB" for rss in memory.peak.values()) or "not sampled"
        print(f"ray, {actors} actor{'s' if actors > 1 else ' '}:  {rate:7.2f} pairs/s ({seconds:.1f} s), "
              f"{rate / local_rate:.2f}x local; peak memory per actor: {peaks}")
    print(f"ray start-up (local cluster, 2 CPUs): {startup_s:.1f} s, paid once per command")
    print(f"ray 2 actors vs 1 actor: {runs[1][0] / runs[2][0]:.2f}x (2 CPUs shared with whatever else runs here)")
    print(f"largest |p(ray) - p(local)| over all pairs and levels: {diff:.1e}")

    one_actor_s = runs[1][0]
    measured_rate = n / max(one_actor_s - load_s, 1e-9)
    rate = args.actor_rate or measured_rate
    source = "--actor-rate" if args.actor_rate else f"this CPU's 1-actor run less the model load ({measured_rate:.2f} pairs/s)"
    print(f"\nEXTRAPOLATION (not measured) for 10,000,000 pairs at {rate:.2f} pairs/s per actor, from {source}, "
          "plus start-up and one model load, assuming linear scaling:")
    for actors in (int(a) for a in args.extrapolate_actors.split(",")):
        hours = (startup_s + load_s + 10_000_000 / (rate * actors)) / 3600
        print(f"  {actors:3d} actors: {hours:9.1f} h")


if __name__ == "__main__":
    main()
