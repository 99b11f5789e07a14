"""Errors that point at the exact place of bad input."""

from __future__ import annotations

from collections.abc import Sequence


def field_path(loc: Sequence) -> str:
    return ".".join(str(part) for part in loc) or "<record>"


def printable(text: str) -> str:
    """``text`` with lone surrogates (undecodable input bytes) escaped, so the message itself can be printed."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class DataError(ValueError):
    """Bad input, located by file, line and field."""

    def __init__(self, file: str | None, line: int | None, field: str | None, message: str):
        file, field, message = (printable(str(x)) if x is not None else None for x in (file, field, message))
        self.file, self.line, self.field, self.message = file, line, field, message
        where = str(file or "<input>") + (f":{line}" if line is not None else "")
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")
