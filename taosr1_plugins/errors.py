"""The user-error hierarchy: errors that point at the exact place of bad input or at what to change.

Every :class:`UserError` is handled once, by the ``taosr1`` command group (``taosr1_plugins.cli``): one
line on stderr and exit status 2, never a traceback. Anything else that escapes a command is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence


def field_path(loc: Sequence) -> str:
    return ".".join(str(part) for part in loc) or "<record>"


def first_problem(exc, whole: str = "<record>") -> tuple[str, str]:
    """(field path, message) of the first problem a pydantic ``ValidationError`` reports; ``whole`` names
    the field when the problem is with the object as a whole.

    The first only: one line per error is the rule, and it does not echo the input back (it may not
    even be printable).
    """
    err = exc.errors()[0]
    return (field_path(err["loc"]) if err["loc"] else whole), err["msg"]


def printable(text: str) -> str:
    """``text`` with lone surrogates (undecodable input bytes) escaped, so the message itself can be printed."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class UserError(Exception):
    """Bad input or a refused request, told in one line (the CLI exits with status 2)."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise print their message quoted
        return printable(str(self.args[0])) if self.args else self.__class__.__name__


class DataError(UserError, ValueError):
    """Bad input, located by file, line and field."""

    def __init__(self, file: str | None, line: int | None, field: str | None, message: str):
        file, field, message = (printable(str(x)) if x is not None else None for x in (file, field, message))
        self.file, self.line, self.field, self.message = file, line, field, message
        where = str(file or "<input>") + (f":{line}" if line is not None else "")
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


class UnknownPluginError(UserError, KeyError):
    """A plugin name that no registered plugin provides; the message lists what is registered."""

    def __init__(self, kind: str, name: str, registered: Sequence[str]):
        self.kind, self.name, self.registered = kind, name, tuple(registered)
        known = ", ".join(sorted(self.registered)) or "none"
        super().__init__(f"unknown {kind} {name!r}; registered: {known}")


class OutputExistsError(UserError, FileExistsError):
    """A job's output already exists and resuming it would mix other settings or inputs into it."""


def data_error(exc, file: str | None, line: int | None = None) -> DataError:
    """A pydantic ``ValidationError`` as the DataError at ``file:line`` naming the field of its first problem."""
    field, message = first_problem(exc)
    return DataError(file, line, field, message)
