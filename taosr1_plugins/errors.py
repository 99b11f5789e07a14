"""Errors that point at the exact place of bad input."""

from __future__ import annotations

from collections.abc import Sequence


def field_path(loc: Sequence) -> str:
    return ".".join(str(part) for part in loc) or "<record>"


class DataError(ValueError):
    """Bad input, located by file, line and field."""

    def __init__(self, file: str | None, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = str(file or "<input>") + (f":{line}" if line is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {message}")
