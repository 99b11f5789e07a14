"""A raw judgement table in any of the formats the table importers read, as its column names (known before
any row is read, so a wrong column map fails at once) and its rows of named cells, each with its line.

Lines are physical lines for CSV/TSV and JSONL (see rawfiles.py) and 1-based row numbers for Parquet. CSV
and JSONL may be gzipped. Parquet is read with pyarrow, which the ``hf`` stack installs anyway (``datasets``
needs it); it is imported only for a Parquet file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import iter_jsonl_objects
from taosr1_plugins.data.rawfiles import check_columns, iter_csv_rows, read_csv_header
from taosr1_plugins.errors import DataError, UserError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
DELIMITERS = {"csv": ",", "tsv": "\t"}


@dataclass
class Table:
    file: str
    columns: list[str] | None  # the CSV header, the first JSON object's keys, the Parquet schema; None: no rows
    columns_line: int | None  # where the columns were read from, for the error that names missing ones
    _rows: Callable[[Sequence[str]], Iterator[tuple[int, dict[str, Any]]]]

    def check(self, expected: Sequence[str]) -> None:
        """Every missing one of ``expected`` in one DataError naming the file."""
        if self.columns is not None:
            check_columns(self.file, self.columns_line, self.columns, expected)

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line, row) per row; ``wanted`` is what the caller reads (Parquet reads only those columns)."""
        return self._rows(wanted)


def open_table(path: str | Path, fmt: str, delimiter: str | None = None) -> Table:
    file = str(path)
    if fmt in DELIMITERS:
        sep = delimiter or DELIMITERS[fmt]
        return Table(file, read_csv_header(path, sep), 1, lambda _: iter_csv_rows(path, (), sep))
    if delimiter is not None:
        raise UserError(f"a delimiter is for csv and tsv files, not {fmt} ({file})")
    if fmt == "jsonl":
        line, first = _first_object(path)
        return Table(file, None if first is None else list(first), line, lambda _: iter_jsonl_objects(path))
    if fmt == "parquet":
        return _parquet_table(path)
    raise UserError(f"unknown table format {fmt!r}; formats: {', '.join(FORMATS)}")


def _first_object(path: str | Path) -> tuple[int | None, dict[str, Any] | None]:
    """JSONL has no header: the first object's keys stand for the columns (later rows are checked one by one)."""
    objects = iter_jsonl_objects(path)
    try:
        for line, obj in objects:
            return line, obj
    finally:
        objects.close()
    return None, None  # an empty file: no rows, nothing to check


def _parquet_table(path: str | Path) -> Table:
    file = str(path)
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UserError(f"reading Parquet ({file}) needs pyarrow: pip install pyarrow") from exc
    import pyarrow as pa

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(file, None, None, f"unreadable Parquet file: {exc}") from exc

    def rows(wanted: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        columns = [name for name in dict.fromkeys(wanted) if name in parquet.schema_arrow.names]
        number = 0
        try:
            for batch in parquet.iter_batches(columns=columns):
                for row in batch.to_pylist():
                    number += 1
                    yield number, row
        except (OSError, pa.ArrowException) as exc:
            raise DataError(file, number + 1, None, f"unreadable Parquet file: {exc}") from exc

    return Table(file, list(parquet.schema_arrow.names), None, rows)
