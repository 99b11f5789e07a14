"""The pairs `taosr1 score` reads: one JSONL or Parquet file, or a folder of such shards.

A catalogue's query–item table is usually exported as many Parquet shards; a labelled split is one JSONL file.
Both hold :class:`Record` rows. This module lists the files and checks every row up front (file, line or row,
field), so a bad row stops the command before a model loads or a cluster starts. Pure Python plus pyarrow (only
when a Parquet file is read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, get_scheme
from taosr1_plugins.data.validation import iter_checked_records
from taosr1_plugins.errors import DataError, data_error

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
PARQUET_SUFFIXES = (".parquet",)


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def pair_files(path: str | Path) -> tuple[list[Path], str]:
    """The input files (sorted, so shards are read in one order every run) and their one format."""
    path = Path(path)
    if path.is_dir():
        # hidden files are a writer's temporaries (Spark's _SUCCESS, .crc, our own .tmp), never shards
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
                       and file_format(p))
        if not files:
            raise DataError(str(path), None, None, "folder holds no .jsonl, .jsonl.gz or .parquet file")
    elif path.exists():
        return [path], file_format(path) or "jsonl"  # one file: JSONL whatever its name, unless .parquet
    else:
        raise DataError(str(path), None, None, "no such file or folder")
    formats = {file_format(p) for p in files}
    if len(formats) > 1:
        raise DataError(str(path), None, None, "folder mixes JSONL and Parquet files; give one format")
    return files, formats.pop()


def parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row as the JSON object it was written from: a struct column has every field of every row, a
    field the row did not have is null, so nulls are dropped (Record's optional fields default the same way)."""
    def drop_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list) and value and isinstance(value[0], tuple):  # a Parquet map: (key, value) pairs
            return {k: v for k, v in value if v is not None}
        return value

    return drop_nulls(row)


def iter_parquet_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, object) of each row, read in record batches so a big shard need not fit in memory."""
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for a file that is not Parquet
        raise DataError(str(path), None, None, f"unreadable Parquet file: {exc}") from exc
    number = 0
    for batch in reader.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, parquet_row(row)


def iter_pair_records(files: list[Path], fmt: str) -> Iterator[Record]:
    """Every record of every file, checked: the one scheme, ids unique across all the files."""
    seen: dict[str, str] = {}
    scheme: tuple[str, str | None] | None = None
    for path in files:
        for where, record in _checked(path, fmt):
            if record.id in seen:
                raise DataError(str(path), where, "id", f"duplicate id {record.id!r} (first in {seen[record.id]})")
            seen[record.id] = f"{path.name}:{where}"
            if scheme is None:
                scheme = (record.scheme, record.scheme_file)
            elif (record.scheme, record.scheme_file) != scheme:
                raise DataError(str(path), where, "scheme", f"{record.scheme!r}: a score run needs records of one "
                                f"scheme, earlier rows are {scheme[0]!r}")
            yield record


def _checked(path: Path, fmt: str) -> Iterator[tuple[int, Record]]:
    if fmt == "jsonl":
        yield from iter_checked_records(path, unique_ids=False)  # unique across files: checked by the caller
        return
    schemes: dict[tuple[str, str | None], LabelScheme] = {}
    for number, obj in iter_parquet_objects(path):
        try:
            record = Record.model_validate(obj)
        except ValidationError as exc:
            raise data_error(exc, str(path), number) from exc
        key = (record.scheme, record.scheme_file)
        if key not in schemes:
            try:
                schemes[key] = get_scheme(*key)
            except (KeyError, ValueError) as exc:
                raise DataError(str(path), number, "scheme", str(exc)) from exc
        if record.label is not None and record.label not in schemes[key].keys:
            raise DataError(str(path), number, "label", f"{record.label!r} is not a level of scheme {record.scheme!r}")
        yield number, record


def read_pair_records(path: str | Path) -> list[Record]:
    files, fmt = pair_files(path)
    return list(iter_pair_records(files, fmt))


@dataclass
class PairSource:
    """What a scoring executor is given: the pairs in memory, or files it reads itself (Ray Data reads them on the
    cluster, so the driver keeps only the ids, to check at the end that each was scored exactly once)."""

    ids: list[str]
    scheme: str
    scheme_file: str | None = None
    records: list[Record] | None = None
    files: list[Path] = field(default_factory=list)
    fmt: str = "jsonl"

    @classmethod
    def of_records(cls, records: Sequence[Record]) -> PairSource:
        from taosr1_plugins.deploy.scoring import records_scheme

        ids = [record.id for record in records]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise DataError(None, None, "id", f"record id {duplicate!r} appears more than once")
        scheme = records_scheme(records)
        return cls(ids, scheme.name, scheme.file, records=list(records))

    @classmethod
    def scan(cls, path: str | Path) -> PairSource:
        """Check every row of the files (streamed: only the ids are kept) before any work starts."""
        files, fmt = pair_files(path)
        ids: list[str] = []
        first: Record | None = None
        for record in iter_pair_records(files, fmt):
            first = first or record
            ids.append(record.id)
        if first is None:
            raise DataError(str(path), None, None, "no records to score")
        return cls(ids, first.scheme, first.scheme_file, files=files, fmt=fmt)
