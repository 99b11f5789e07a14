"""Scoring on Ray Data: read the pairs, map batches through a pool of actors that each load the model once, write
each batch as an atomic part (parts.py), then assemble OUT with every pair exactly once.

Ray does the scheduling and the fault tolerance: Ray Data's actor pool (``map_batches`` with a callable class and
``compute=ActorPoolStrategy``), actors restarted and their batch retried after a crash (``max_restarts``,
``max_task_retries``). Each actor builds the deployment adapter named by ``settings.backend`` (``hf`` on CPU,
``vllm`` where vLLM is installed: on a GPU actor, or on CPU actors with the vLLM CPU build, the command then
running in the vLLM environment; or a plugin's) and scores with ``score_batch`` and
``score_row``, the code the local scorer runs, so a row is the same whichever executor wrote it.

Ray is imported only inside these functions.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taosr1_plugins.core.progress import progress_bar
from taosr1_plugins.deploy.config import RaySettings, ScoreSettings
from taosr1_plugins.deploy.pair_files import PairSource
from taosr1_plugins.deploy.ray_data.parts import PartsFolder, ids_digest, write_part

# A crashed actor (OOM, a killed process, a lost node) is restarted and its batch retried this many times; a batch
# that kills its actor every time fails the run instead of looping for ever.
MAX_RESTARTS = 4
# Reading a file is I/O; tasks that ask for no CPU never wait behind the actors that hold every CPU.
READ_CPUS = 0


class PairScorer:
    """One Ray actor: one model replica, loaded once; called with a batch of pairs, writes one part."""

    def __init__(self, model: str, scheme: str, scheme_file: str | None, settings: ScoreSettings, parts: str,
                 done: frozenset[str]):
        import os

        from taosr1_plugins.core.schemes import get_scheme
        from taosr1_plugins.deploy.scoring import ExplainPolicy, load_scorer

        # torch sizes its thread pool from this when it loads: the CPUs Ray reserved, not every core of the node
        os.environ["OMP_NUM_THREADS"] = str(max(1, math.floor(settings.ray.cpus_per_actor)))
        # vLLM's CPU build binds its threads to every core of the NUMA node unless told not to: actors sharing a
        # node would then all run on the same cores. Unbound, its engine takes OMP_NUM_THREADS threads as torch does.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        self.scheme = get_scheme(scheme, scheme_file)
        self.settings, self.parts, self.done = settings, parts, done
        self.policy = ExplainPolicy(settings.explain, settings.explain_margin, settings.cumpt)
        self.scorer = load_scorer(model, self.scheme, settings)

    def __call__(self, batch: Any) -> dict[str, list]:
        from taosr1_plugins.deploy.scoring import score_batch, score_row

        records = [r for r in batch_records(batch) if r.id not in self.done]  # done: finished in an earlier run
        rows: list[dict] = []
        for start in range(0, len(records), self.settings.batch_size):
            chunk = records[start : start + self.settings.batch_size]
            for record, (pair, text) in zip(chunk, score_batch(self.scorer, chunk, self.scheme, self.policy)):
                rows.append(score_row(record, self.scheme, pair, text))
        name = write_part(self.parts, rows) if rows else ""
        return {"part": [name], "rows": [len(rows)]}


def batch_records(batch: Any) -> list:
    """A pyarrow batch of pairs as Records: JSON lines (a ``text`` column, from JSONL or from records in memory)
    or Parquet rows. The driver checked every row already, so a failure here is a bug, not bad input."""
    from taosr1_plugins.core.jsonl import parse_json_line
    from taosr1_plugins.core.records import Record
    from taosr1_plugins.deploy.pair_files import parquet_row

    if "text" in batch.column_names:  # Record has no `text` field: this is a JSON line
        # as the driver's reader took them: a leading byte-order mark dropped, blank lines skipped
        lines = (line.lstrip("\ufeff") for line in batch.column("text").to_pylist())
        return [Record.model_validate(parse_json_line(line, "<ray batch>", 0)) for line in lines if line.strip()]
    return [Record.model_validate(parquet_row(row)) for row in batch.to_pylist()]


def pair_dataset(source: PairSource) -> Any:
    import ray.data

    if source.records is not None:
        return ray.data.from_items([{"text": record.model_dump_json(exclude_none=True)} for record in source.records])
    paths = [str(path) for path in source.files]
    if source.fmt == "parquet":
        return ray.data.read_parquet(paths, num_cpus=READ_CPUS)
    return ray.data.read_text(paths, num_cpus=READ_CPUS)  # .gz is read through (compression from the name)


@contextlib.contextmanager
def ray_cluster(settings: RaySettings, *, quiet: bool) -> Iterator[None]:
    """Join ``settings.address``, or start a local cluster for this command and stop it after; a cluster this
    process already joined (a notebook, the test session) is used as it is and left running."""
    import logging

    import ray

    if ray.is_initialized():
        yield
        return
    common: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": not quiet}
    if settings.address:
        ray.init(address=settings.address, **common)
    else:  # "local": a new cluster even when RAY_ADDRESS names another
        ray.init(address="local", num_cpus=max(1, math.ceil(settings.actors * settings.cpus_per_actor)),
                 num_gpus=math.ceil(settings.actors * settings.gpus_per_actor), **common)
    try:
        yield
    finally:
        ray.shutdown()


def run_identity(model: str, source: PairSource, settings: ScoreSettings) -> dict[str, Any]:
    """What the rows depend on: a re-run that differs in any of it must not reuse the parts."""
    return {
        "model": str(model),
        "backend": settings.backend,
        "options": settings.options,
        "scheme": source.scheme,
        "scheme_file": source.scheme_file,
        "cumpt": repr(settings.cumpt),  # a plain dataclass of floats: its repr is its value
        "explain": [settings.explain, settings.explain_margin, settings.max_explain_tokens],
        "ids_sha256": ids_digest(source.ids),
    }


def score_on_ray(model: str | Path, source: PairSource, out: str | Path, settings: ScoreSettings) -> Path:
    """Score ``source`` into ``out`` on a Ray cluster; resumes an interrupted run from ``out.parts/``."""
    from ray.exceptions import RayError

    parts = PartsFolder(out)
    parts.start(run_identity(str(model), source, settings), overwrite=settings.overwrite)
    done = parts.done_ids()
    todo = len(source.ids) - len(done)
    if done:
        print(f"resuming: {len(done)} of {len(source.ids)} pairs already scored in {parts.folder}", file=sys.stderr)
    if todo:
        try:
            _run(model, source, parts, done, settings)
        except (RayError, ConnectionError) as exc:  # the command reports it in one line; the parts stay for a rerun
            raise RuntimeError(f"Ray scoring stopped ({type(exc).__name__}: {exc}); rerun the same command to "
                               f"resume from {parts.folder}") from exc
    assembly = parts.assemble(source.ids)
    if assembly.duplicates_dropped:
        print(f"{assembly.duplicates_dropped} pairs were scored twice (a batch of a killed run finished late); "
              "each is written once", file=sys.stderr)
    return Path(out)


def _run(model: str | Path, source: PairSource, parts: PartsFolder, done: set[str], settings: ScoreSettings) -> None:
    from ray.data import ActorPoolStrategy, DataContext

    ray_settings = settings.ray
    with ray_cluster(ray_settings, quiet=not settings.progress):
        DataContext.get_current().enable_progress_bars = False  # ours counts pairs, across runs
        scored = pair_dataset(source).map_batches(
            PairScorer,
            batch_size=ray_settings.part_rows,
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=ray_settings.actors),  # a fixed pool: one model replica per actor
            num_cpus=ray_settings.cpus_per_actor,
            num_gpus=ray_settings.gpus_per_actor or None,
            fn_constructor_kwargs={
                "model": str(model), "scheme": source.scheme, "scheme_file": source.scheme_file,
                "settings": settings.model_copy(update={"progress": False}), "parts": str(parts.folder),
                "done": frozenset(done),
            },
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_RESTARTS,
        )
        with progress_bar(len(source.ids), desc="score (ray)", unit="pair", initial=len(done),
                          enabled=settings.progress) as bar:
            for batch in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
                bar.update(sum(batch.column("rows").to_pylist()))
