"""Stage 2 sampling: N responses per prompt from a model, parsed and scored, written in resumable shards.

Every prompt gets ``n`` samples from a generation backend (see :mod:`taosr1_plugins.passn.generation`); each
sample is parsed with :func:`formats.parse_response`, and the prompt's pass statistics are recorded:
the unbiased pass@1 estimate k/N, pass@N (any sample correct), the majority vote and the label
distribution. A sample is *correct* when its format is valid and its label is the gold one.

Long jobs and resuming: the prompts are cut, in input order, into fixed shards of ``shard_size``
prompts; shard k is sampled with seed ``seed + k`` and written to ``<out>.shards/shard-0000k.jsonl``
with an atomic rename, so a shard file is either complete or absent. A run killed at any point (SIGKILL
included) loses at most the shard it was working on, and the same command run again samples only the
missing shards: no sample is lost or written twice. The sampling settings (and the prompt ids) are
recorded in ``<out>.shards/meta.json``; a rerun with different settings is refused rather than mixing
two distributions in one file. When every shard exists, ``<out>`` is written atomically in input
order with ``<stem>.summary.json`` beside it, and the shard directory is removed.

Framework-free: the backend brings torch, vLLM or an HTTP client.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.passn.config import PassnShardSettings  # noqa: F401 (declared with the stage's settings)
from taosr1_plugins.passn.difficulty import DifficultyThresholds, DifficultyRow, difficulty_row
from taosr1_plugins.errors import DataError, OutputExistsError, UserError
from taosr1_plugins.evaluation.metrics import INVALID
from taosr1_plugins.core.formats import ResponseFormat, parse_response
from taosr1_plugins.passn.generation import GenerationBackend, SamplingParams, get_generation_backend
from taosr1_plugins.core.jsonl import atomic_write, iter_numbered_jsonl, write_jsonl
from taosr1_plugins.core.progress import progress_bar
from taosr1_plugins.core.prompts import build_messages, prompt_style_of
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, schemes_of

SHARD_PATTERN = "shard-{:05d}.jsonl"


class SettingsMismatchError(UserError, ValueError):
    """A rerun asked for different sampling settings than the interrupted run it would resume."""


# ---------------------------------------------------------------------------------------------------
# Sample rows


class SampledResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    label: str | None = None
    format_ok: bool
    correct: bool
    finish_reason: str = "stop"


class PassStats(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    n: int = Field(ge=1)
    correct: int = Field(ge=0)
    pass_at_1: float = Field(alias="pass@1", ge=0, le=1, description="k/N, the unbiased pass@1 estimate")
    pass_at_n: bool = Field(alias="pass@n", description="at least one correct sample")
    majority: str | None = Field(None, description="most frequent parsed label")
    majority_correct: bool
    format_ok_rate: float = Field(ge=0, le=1)
    label_distribution: dict[str, int] = Field(description=f"parsed label -> count; {INVALID!r} for unparseable")


class SampleRow(BaseModel):
    """One prompt of a samples file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    scheme: str = Field(min_length=1)
    gold: str = Field(min_length=1)
    fmt: ResponseFormat
    messages: list[dict[str, str]] = Field(min_length=1, description="the chat prompt the responses answer")
    responses: list[SampledResponse] = Field(min_length=1)
    stats: PassStats


def pass_stats(gold: str, labels: Sequence[str | None], format_ok: Sequence[bool], scheme: LabelScheme) -> PassStats:
    # difficulty_row is the one definition of "correct" and of the majority vote
    row = difficulty_row("-", gold, list(labels), list(format_ok))
    counts = Counter(label if label is not None else INVALID for label in labels)
    ordered = {key: counts[key] for key in [*scheme.keys, INVALID] if counts[key]}
    return PassStats(
        n=row.n,
        correct=row.correct,
        pass_at_1=row.pass_rate,
        pass_at_n=row.correct > 0,
        majority=row.majority,
        majority_correct=row.majority == gold,
        format_ok_rate=row.format_ok_rate,
        label_distribution=ordered,
    )


def sample_row(record: Record, scheme: LabelScheme, fmt: ResponseFormat, messages, completions) -> dict[str, Any]:
    responses = []
    for completion in completions:
        parsed = parse_response(completion.text, scheme, fmt)
        responses.append(
            SampledResponse(
                text=completion.text,
                label=parsed.label,
                format_ok=parsed.format_ok,
                correct=parsed.format_ok and parsed.label == record.label,
                finish_reason=completion.finish_reason,
            )
        )
    stats = pass_stats(record.label, [r.label for r in responses], [r.format_ok for r in responses], scheme)
    row = SampleRow(
        id=record.id, scheme=record.scheme, gold=record.label, fmt=fmt, messages=list(messages),
        responses=responses, stats=stats,
    )
    return row.model_dump(mode="json", by_alias=True)


def read_samples(path: str | Path) -> Iterator[SampleRow]:
    """Samples rows, validated; a bad line raises DataError naming file, line and field."""
    for _, row in iter_numbered_jsonl(path, SampleRow):
        yield row


# ---------------------------------------------------------------------------------------------------
# Shards


def output_paths(out: str | Path) -> dict[str, Path]:
    out = Path(out)
    stem = out.name.removesuffix(".jsonl")
    shards = out.with_name(out.name + ".shards")
    return {"out": out, "shards": shards, "meta": shards / "meta.json", "summary": out.with_name(f"{stem}.summary.json")}


def _fingerprint(records: Sequence[Record]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(record.id.encode() + b"\0" + (record.label or "").encode() + b"\n")
    return digest.hexdigest()


def _metadata(model: str, records: Sequence[Record], settings: PassnShardSettings) -> dict[str, Any]:
    return {
        "settings": settings.model_dump(mode="json"),
        "model": str(model),
        "prompts": len(records),
        "prompt_ids_sha256": _fingerprint(records),
    }


def _check_resume(meta_path: Path, wanted: dict[str, Any]) -> None:
    try:
        found = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(str(meta_path), None, None, f"unreadable shard metadata: {exc}") from exc
    differences = []
    for key in ("model", "prompts", "prompt_ids_sha256"):
        if found.get(key) != wanted[key]:
            differences.append(f"{key}: {found.get(key)!r} -> {wanted[key]!r}")
    for key, value in wanted["settings"].items():
        if (found.get("settings") or {}).get(key) != value:
            differences.append(f"{key}: {(found.get('settings') or {}).get(key)!r} -> {value!r}")
    if differences:
        raise SettingsMismatchError(
            f"{meta_path.parent} holds an interrupted run with other settings ({'; '.join(differences)}); "
            "rerun with the original settings to resume, or pass overwrite to start over"
        )


def _remove_tree(path: Path) -> None:
    """Rename first (atomic), then delete: a kill mid-delete never leaves a half-deleted shard dir."""
    if path.exists():
        trash = path.with_name(f".{path.name}.deleting-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash)


# ---------------------------------------------------------------------------------------------------
# The run


def sample_passn(
    model: str,
    records: Sequence[Record],
    out: str | Path,
    settings: PassnShardSettings | None = None,
    *,
    backend_options: dict[str, Any] | None = None,
    backend: GenerationBackend | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Sample ``settings.n`` responses per labelled record into ``out``; returns the summary dict.

    The backend is created (``get_generation_backend(settings.backend, model=model, **backend_options)``)
    only when some shard still needs sampling, so finishing an almost-done run loads no model.
    """
    settings = settings or PassnShardSettings()
    paths = output_paths(out)
    started = time.monotonic()
    for record in records:
        if record.label is None:
            raise DataError(None, None, "label", f"record {record.id!r} has no label: pass@N needs the gold label")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i, c in Counter(ids).items() if c > 1)
        raise DataError(None, None, "id", f"duplicate record id {duplicate!r}")

    if overwrite:
        _remove_tree(paths["shards"])
    elif paths["out"].exists() and not paths["shards"].exists():
        raise OutputExistsError(f"{paths['out']} exists (a finished run); pass overwrite to replace it")

    wanted = _metadata(model, records, settings)
    shard_dir = paths["shards"]
    created = [p for p in (shard_dir, *shard_dir.parents) if not p.exists()]  # deepest first
    if paths["meta"].exists():
        _check_resume(paths["meta"], wanted)
    else:
        shard_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(paths["meta"]) as fh:
            json.dump(wanted, fh, indent=2)
    for stray in shard_dir.glob(".*.tmp"):  # temporary files of a shard write that was killed
        stray.unlink()

    schemes = schemes_of(records)
    style = prompt_style_of(model)  # the prompt the model was trained on
    shard_count = math.ceil(len(records) / settings.shard_size)
    shard_files = [shard_dir / SHARD_PATTERN.format(k) for k in range(shard_count)]
    todo = [k for k in range(shard_count) if not shard_files[k].exists()]
    done_prompts = len(records) - sum(len(_shard_records(records, settings, k)) for k in todo)

    if todo and backend is None:
        try:
            backend = get_generation_backend(settings.backend, model=str(model), **(backend_options or {}))
        except BaseException:
            if created:  # a run that could not even load its model leaves nothing behind
                _remove_tree(shard_dir)
                for folder in created[1:]:
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            raise
    bar = progress_bar(len(records), desc="pass@N", unit="prompt", initial=done_prompts, enabled=progress)
    try:
        for k in todo:
            chunk = _shard_records(records, settings, k)
            conversations = [build_messages(r, schemes[r.scheme], settings.fmt, style) for r in chunk]
            params = SamplingParams(
                n=settings.n, temperature=settings.temperature, top_p=settings.top_p,
                max_new_tokens=settings.max_new_tokens, seed=settings.seed + k,
            )
            completions = backend.sample(conversations, params)
            rows = [
                sample_row(r, schemes[r.scheme], settings.fmt, messages, samples)
                for r, messages, samples in zip(chunk, conversations, completions)
            ]
            write_jsonl(shard_files[k], rows)  # atomic: the shard is complete or absent
            bar.update(len(chunk))
    finally:
        bar.close()

    rows = [row for path in shard_files for _, row in iter_numbered_jsonl(path, SampleRow)]
    write_jsonl(paths["out"], (row.model_dump(mode="json", by_alias=True) for row in rows))
    summary = summarize_samples(rows, schemes)
    summary.update(
        model=str(model),
        settings=settings.model_dump(mode="json"),
        shards=shard_count,
        shards_resumed=shard_count - len(todo),
        seconds=round(time.monotonic() - started, 3),
        out=str(paths["out"]),
    )
    with atomic_write(paths["summary"]) as fh:
        json.dump(summary, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    _remove_tree(shard_dir)
    return summary


def _shard_records(records: Sequence[Record], settings: PassnShardSettings, k: int) -> Sequence[Record]:
    return records[k * settings.shard_size : (k + 1) * settings.shard_size]


def summarize_samples(rows: Sequence[SampleRow], schemes: dict[str, LabelScheme] | None = None) -> dict[str, Any]:
    """Corpus-level pass statistics: mean pass@1, pass@N rate, majority-vote accuracy, per gold level."""
    total = len(rows)
    if not total:
        return {"prompts": 0, "samples": 0}
    per_level: dict[str, dict[str, Any]] = {}
    for row in rows:
        level = per_level.setdefault(row.gold, {"prompts": 0, "pass@1": 0.0, "pass@n": 0, "majority_correct": 0})
        level["prompts"] += 1
        level["pass@1"] += row.stats.pass_at_1
        level["pass@n"] += row.stats.pass_at_n
        level["majority_correct"] += row.stats.majority_correct
    for level in per_level.values():
        level["pass@1"] = round(level["pass@1"] / level["prompts"], 4)
        level["pass@n"] = round(level["pass@n"] / level["prompts"], 4)
        level["majority_accuracy"] = round(level.pop("majority_correct") / level["prompts"], 4)
    buckets = Counter(str(difficulty_of(row).bucket) for row in rows)
    return {
        "prompts": total,
        "samples": sum(row.stats.n for row in rows),
        "pass@1": round(sum(r.stats.pass_at_1 for r in rows) / total, 4),
        "pass@n": round(sum(r.stats.pass_at_n for r in rows) / total, 4),
        "majority_accuracy": round(sum(r.stats.majority_correct for r in rows) / total, 4),
        "format_ok_rate": round(sum(r.stats.format_ok_rate for r in rows) / total, 4),
        "buckets": dict(sorted(buckets.items())),
        "per_level": dict(sorted(per_level.items())),
    }


# ---------------------------------------------------------------------------------------------------
# Difficulty


def difficulty_of(row: SampleRow, thresholds: DifficultyThresholds | None = None) -> DifficultyRow:
    return difficulty_row(
        row.id, row.gold, [r.label for r in row.responses], [r.format_ok for r in row.responses], thresholds
    )


def write_difficulty(
    samples: str | Path, out: str | Path, thresholds: DifficultyThresholds | None = None
) -> dict[str, Any]:
    """The per-prompt difficulty file (docs/difficulty.md) from a samples file; returns bucket counts."""
    rows = [difficulty_of(row, thresholds) for row in read_samples(samples)]
    write_jsonl(out, rows)
    buckets = Counter(str(row.bucket) for row in rows)
    return {"prompts": len(rows), "buckets": dict(sorted(buckets.items())), "out": str(out)}
