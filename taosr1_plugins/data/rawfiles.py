"""Reading raw judgement CSV files (plain or gzip) row by row, with each row's line number; raw JSONL
files are read by :func:`taosr1_plugins.core.jsonl.iter_jsonl_objects`, with the same rules.

Every problem is raised as DataError(file, line, field, message); line numbers are physical lines of
the decompressed file, 1-based, counting the CSV header as line 1, and name the line a row *starts* on
even when a quoted field spans several lines.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.errors import DataError
from taosr1_plugins.core.jsonl import DAMAGED_FILE, bad_text, open_text


def check_columns(file: str, line: int | None, present: Sequence[str], expected: Sequence[str]) -> None:
    """Every expected column missing from ``present``, in one DataError: fixing a map one column per run is
    the first hour lost. Names the field when one is missing (as every located error does)."""
    missing = [column for column in expected if column not in present]
    if not missing:
        return
    what = f"missing column {missing[0]!r}" if len(missing) == 1 else "missing columns " + ", ".join(map(repr, missing))
    message = f"{what}; expected {', '.join(expected)}; the file has {', '.join(present) or 'no columns'}"
    if len(present) == 1:  # one column: the fields were split on the wrong character
        found = [d for d in (";", "\t", "|", ",") if d in present[0]]
        if found:
            message += f" (one column: is the delimiter {found[0]!r}?)"
    raise DataError(file, line, missing[0] if len(missing) == 1 else None, message)


def iter_csv_rows(
    path: str | Path, required: Iterable[str] = (), delimiter: str = ","
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, row) for each data row; every row has exactly the header's columns.

    A header without some ``required`` column raises before the first row. strict=True makes the csv module
    reject an unterminated quote at end of file (a truncated file) instead of silently returning a shortened
    last field.
    """
    file = str(path)
    with open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        line_before = 0
        try:
            header = _checked_header(file, next(reader, None))
            check_columns(file, 1, header, list(required))
            line_before = reader.line_num
            for fields in reader:
                line = line_before + 1
                line_before = reader.line_num
                if not fields:  # a blank line
                    continue
                if len(fields) != len(header):
                    missing = header[len(fields)] if len(fields) < len(header) else None
                    raise DataError(
                        file,
                        line,
                        missing,
                        f"row has {len(fields)} fields, the header has {len(header)} (truncated or malformed row)",
                    )
                for column, value in zip(header, fields):
                    found = bad_text(value)
                    if found:
                        raise DataError(file, line, column, found[1])
                yield line, dict(zip(header, fields))
        except csv.Error as exc:
            raise DataError(file, line_before + 1, None, f"malformed CSV: {exc}") from exc
        except DAMAGED_FILE as exc:
            raise DataError(file, line_before + 1, None, f"unreadable file: {exc}") from exc


def _checked_header(file: str, header: list[str] | None) -> list[str]:
    if header is None:
        raise DataError(file, 1, None, "empty file: no CSV header")
    header = [name.strip() for name in header]
    for name in header:
        found = bad_text(name)
        if found:
            raise DataError(file, 1, None, f"header: {found[1]}")
    return header


def read_csv_header(path: str | Path, delimiter: str = ",") -> list[str]:
    """The header's column names, checked as ``iter_csv_rows`` checks them, without reading on."""
    file = str(path)
    with open_text(path) as fh:
        try:
            header = next(csv.reader(fh, delimiter=delimiter, strict=True), None)
        except csv.Error as exc:
            raise DataError(file, 1, None, f"malformed CSV: {exc}") from exc
        except DAMAGED_FILE as exc:
            raise DataError(file, 1, None, f"unreadable file: {exc}") from exc
    return _checked_header(file, header)


def required_text(row: dict[str, Any], field: str, file: str, line: int) -> str:
    """A field that must be a non-blank string (query, title)."""
    if field not in row:
        raise DataError(file, line, field, "missing field")
    value = row[field]
    if not isinstance(value, str):
        raise DataError(file, line, field, f"expected text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise DataError(file, line, field, "empty")
    return value


def optional_text(row: dict[str, Any], field: str, file: str, line: int) -> str | None:
    """A field that may be absent, null or blank (-> None), but is text when present."""
    value = row.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError(file, line, field, f"expected text, got {type(value).__name__}")
    return value.strip() or None
