"""Checking a records file: each line a valid Record, ids unique, each label a level of its scheme."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from .errors import DataError, field_path
from .rawfiles import iter_jsonl_objects
from .records import Record
from .schemes import LabelScheme, SchemeError, get_scheme

UNLABELLED = None


def validate_records(
    path: str | Path,
    scheme: LabelScheme | None = None,
    resolve_scheme: Callable[[str], LabelScheme] = get_scheme,
) -> Counter[tuple[str, str | None]]:
    """Counts of (scheme, label) over the file; label None for unlabelled records.

    With ``scheme``, every record must name it (this is how a scheme from a YAML file, which is not
    registered, is checked); otherwise each record's scheme is looked up by name.
    Raises DataError at the first problem.
    """
    file = str(path)
    schemes: dict[str, LabelScheme] = {scheme.name: scheme} if scheme else {}
    first_line_of_id: dict[str, int] = {}
    counts: Counter[tuple[str, str | None]] = Counter()

    for line, obj in iter_jsonl_objects(path):
        try:
            record = Record.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise DataError(file, line, field_path(err["loc"]), err["msg"]) from exc

        if record.id in first_line_of_id:
            raise DataError(
                file, line, "id", f"duplicate id {record.id!r} (first on line {first_line_of_id[record.id]})"
            )
        first_line_of_id[record.id] = line

        if record.scheme not in schemes:
            if scheme is not None:
                raise DataError(
                    file, line, "scheme", f"record is in scheme {record.scheme!r}, expected {scheme.name!r}"
                )
            try:
                schemes[record.scheme] = resolve_scheme(record.scheme)
            except (SchemeError, DataError) as exc:
                raise DataError(file, line, "scheme", str(exc)) from exc
        levels = schemes[record.scheme].keys
        if record.label is not UNLABELLED and record.label not in levels:
            raise DataError(
                file,
                line,
                "label",
                f"{record.label!r} is not a level of scheme {record.scheme!r} (levels: {', '.join(levels)})",
            )
        counts[record.scheme, record.label] += 1
    return counts
