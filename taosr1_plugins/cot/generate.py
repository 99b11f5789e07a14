"""Stage 1 data: teacher chain-of-thought with retrieval augmentation and a label-consistency filter.

For each labelled record the teacher is prompted with the level definitions and the most similar
labelled records from a reference pool. A trace is kept only when it is well formed and its final label
equals the human label; otherwise the record is retried (by default with the human label as a hint) up
to ``retries`` times, then dropped. Counts are reported per level.

Resumability: every finished record - kept *or dropped* - is appended to ``<stem>.ledger.jsonl.partial``
(fsynced, via :class:`ResumableJsonl`). A rerun of the same command skips everything in the ledger, so
nothing is regenerated, duplicated, or retried again after being dropped. When all records are done the
output is written atomically in input order, then the report, then the ledger is renamed to
``<stem>.ledger.jsonl`` (kept: it says which records were dropped and why).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from taosr1_plugins.errors import OutputExistsError
from taosr1_plugins.core.formats import parse_response
from taosr1_plugins.core.jsonl import ResumableJsonl, atomic_write, write_jsonl
from taosr1_plugins.core.progress import progress_bar
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, schemes_of
from taosr1_plugins.cot.config import CotOptions  # noqa: F401 (declared with the stage's settings; imported from here too)
from taosr1_plugins.cot.teachers import Teacher, TeacherError, build_request

KEPT, DROPPED = "kept", "dropped"
LAST_RESPONSE_CHARS = 4000  # enough to see why a dropped record failed, without bloating the ledger


def output_paths(out: str | Path) -> dict[str, Path]:
    """The files a run writes beside ``out``: the ledger (resume log) and the JSON report."""
    out = Path(out)
    stem = out.name.removesuffix(".jsonl")
    return {
        "out": out,
        "ledger": out.with_name(f"{stem}.ledger.jsonl"),
        "report": out.with_name(f"{stem}.report.json"),
    }


# ---------------------------------------------------------------------------------------------------
# Input


# ---------------------------------------------------------------------------------------------------
# Report


@dataclass
class LevelCounts:
    scheme: str
    level: str
    name: str
    total: int = 0
    kept_first: int = 0
    kept_retry: int = 0
    dropped: int = 0


@dataclass
class CotReport:
    teacher: str
    out: str
    total: int = 0
    kept_first: int = 0
    kept_retry: int = 0
    dropped: int = 0
    teacher_requests: int = 0  # over all runs of this output, resumed ones included
    resumed: int = 0  # records finished by an earlier, interrupted run
    seconds: float = 0.0  # this run only
    per_level: list[LevelCounts] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.kept_first + self.kept_retry

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kept"] = self.kept
        data["kept_rate"] = round(self.kept / self.total, 4) if self.total else 0.0
        return data


def build_report(records: Sequence[Record], rows: dict[str, dict], *, teacher: str, out: Path) -> CotReport:
    report = CotReport(teacher=teacher, out=str(out))
    levels: dict[tuple[str, str], LevelCounts] = {}
    for scheme_name, scheme in schemes_of(records).items():
        for level in scheme.levels:
            levels[scheme_name, level.key] = LevelCounts(scheme_name, level.key, level.name)
    for record in records:
        row = rows[record.id]
        counts = levels[record.scheme, record.label]
        if row["outcome"] == KEPT:
            outcome = "kept_first" if row["attempts"] == 1 else "kept_retry"
        else:
            outcome = "dropped"
        for target in (report, counts):
            target.total += 1
            setattr(target, outcome, getattr(target, outcome) + 1)
        report.teacher_requests += row["attempts"]
    report.per_level = list(levels.values())
    return report


# ---------------------------------------------------------------------------------------------------
# The pipeline


def generate_cot(
    records: Sequence[Record],
    teacher: Teacher,
    out: str | Path,
    *,
    pool: Sequence[Record] | None = None,
    options: CotOptions | None = None,
    teacher_name: str = "teacher",
    overwrite: bool = False,
    progress: bool = False,
) -> CotReport:
    """Generate, filter and write CoT for ``records`` (see the module docstring).

    ``pool`` (the labelled examples retrieved into prompts) defaults to ``records``.
    """
    opts = options or CotOptions()
    paths = output_paths(out)
    started = time.monotonic()
    ledger_partial = paths["ledger"].with_name(paths["ledger"].name + ".partial")
    if paths["out"].exists() and not ledger_partial.exists() and not overwrite:
        raise OutputExistsError(f"{paths['out']} exists (a finished run); pass overwrite to replace it")

    schemes = schemes_of(records)
    ledger = ResumableJsonl(paths["ledger"])
    try:
        wanted = {r.id for r in records}
        # Rows for ids no longer in the input are ignored (the input changed between runs).
        rows = {row["id"]: row for row in ledger.rows if row["id"] in wanted}
        resumed = len(rows)
        todo = [r for r in records if r.id not in rows]

        neighbours: dict[str, list[Record]] = {}
        if todo and opts.k > 0:
            from taosr1_plugins.cot.retrieval import BM25Index

            index = BM25Index(records if pool is None else pool)
            neighbours = {r.id: index.neighbours(r, opts.k) for r in todo}

        bar = progress_bar(len(records), desc="cot", unit="record", initial=resumed, enabled=progress)
        try:
            for start in range(0, len(todo), max(1, opts.batch_size)):
                chunk = todo[start : start + opts.batch_size]
                for row in _run_chunk(chunk, teacher, schemes, neighbours, opts):
                    ledger.append(row)
                    rows[row["id"]] = row
                    bar.update(1)
        finally:
            bar.close()

        kept = [
            record.model_copy(update={"cot": rows[record.id]["cot"]})
            for record in records
            if rows[record.id]["outcome"] == KEPT
        ]
        write_jsonl(paths["out"], kept)
        report = build_report(records, rows, teacher=teacher_name, out=paths["out"])
        report.resumed = resumed
        report.seconds = round(time.monotonic() - started, 3)
        with atomic_write(paths["report"]) as fh:
            json.dump(report.to_dict(), fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        ledger.finish()
        return report
    finally:
        ledger.close()


def _run_chunk(
    chunk: Sequence[Record],
    teacher: Teacher,
    schemes: dict[str, LabelScheme],
    neighbours: dict[str, list[Record]],
    opts: CotOptions,
) -> Iterator[dict[str, Any]]:
    """Try a chunk of records up to 1 + retries times; yield one ledger row per finished record."""
    pending = list(chunk)
    last_response: dict[str, str] = {}
    for attempt in range(opts.retries + 1):
        if not pending:
            return
        hint = attempt > 0 and opts.hint_on_retry
        requests = [
            build_request(
                record,
                schemes[record.scheme],
                neighbours.get(record.id, ()),
                hint_label=record.label if hint else None,
                attempt=attempt,
                fmt=opts.fmt,
                max_words=opts.max_words,
            )
            for record in pending
        ]
        responses = teacher.generate(requests)
        if len(responses) != len(requests):
            raise TeacherError(f"teacher returned {len(responses)} responses for {len(requests)} requests")
        still_pending = []
        for record, response in zip(pending, responses):
            parsed = parse_response(response, schemes[record.scheme], opts.fmt)
            if parsed.format_ok and parsed.label == record.label and not _too_long(parsed.reasoning, opts):
                yield {"id": record.id, "outcome": KEPT, "attempts": attempt + 1, "cot": parsed.reasoning}
            else:
                last_response[record.id] = response if isinstance(response, str) else repr(response)
                still_pending.append(record)
        pending = still_pending
    for record in pending:
        parsed = parse_response(last_response[record.id], schemes[record.scheme], opts.fmt)
        yield {
            "id": record.id,
            "outcome": DROPPED,
            "attempts": opts.retries + 1,
            "why": "malformed response" if not parsed.format_ok
            else f"label {parsed.label} != gold {record.label}" if parsed.label != record.label
            else f"reasoning over {opts.max_words} words",
            "last_response": last_response[record.id][:LAST_RESPONSE_CHARS],
        }


def _too_long(reasoning: str, opts: CotOptions) -> bool:
    return opts.max_words is not None and len(reasoning.split()) > opts.max_words
