"""The one check of a records file, shared by `data validate`, `data split`, CoT generation and scoring:
each line a valid Record, ids unique, each record's scheme known and its label a level of that scheme
(the LLaMA-Factory export too)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from taosr1_plugins.errors import DataError, UnknownPluginError, data_error
from taosr1_plugins.core.jsonl import iter_jsonl_objects
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, SchemeError, get_scheme

UNLABELLED = None


def iter_checked_records(
    path: str | Path,
    scheme: LabelScheme | None = None,
    *,
    require_label: bool = False,
    unique_ids: bool = True,
    resolve_scheme: Callable[[str], LabelScheme] = get_scheme,
) -> Iterator[tuple[int, Record]]:
    """Yield (line, record); the first problem raises DataError naming file, line and field.

    With ``scheme``, every record must name it; otherwise each record's scheme is looked up: its YAML file
    when it has one (``scheme_file``), else ``resolve_scheme(name)``.
    """
    file = str(path)
    schemes: dict[tuple[str, str | None], LabelScheme] = {}
    first_line_of_id: dict[str, int] = {}

    for line, obj in iter_jsonl_objects(path):
        try:
            record = Record.model_validate(obj)
        except ValidationError as exc:
            raise data_error(exc, file, line) from exc

        if unique_ids:
            if record.id in first_line_of_id:
                raise DataError(
                    file, line, "id", f"duplicate id {record.id!r} (first on line {first_line_of_id[record.id]})"
                )
            first_line_of_id[record.id] = line

        key = (record.scheme, record.scheme_file)
        if scheme is not None:
            if record.scheme != scheme.name:
                raise DataError(
                    file, line, "scheme", f"record is in scheme {record.scheme!r}, expected {scheme.name!r}"
                )
            schemes[key] = scheme
        elif key not in schemes:
            try:
                schemes[key] = get_scheme(*key) if record.scheme_file else resolve_scheme(record.scheme)
            except UnknownPluginError as exc:  # e.g. records of a YAML scheme written before they named its file
                raise DataError(file, line, "scheme", f"{exc} (a YAML scheme: pass its file with --scheme)") from exc
            except (SchemeError, DataError, ValueError) as exc:
                raise DataError(file, line, "scheme", str(exc)) from exc
        levels = schemes[key].keys
        if record.label is UNLABELLED:
            if require_label:
                raise DataError(file, line, "label", "no label; this command needs labelled records")
        elif record.label not in levels:
            raise DataError(
                file,
                line,
                "label",
                f"{record.label!r} is not a level of scheme {record.scheme!r} (levels: {', '.join(levels)})",
            )
        yield line, record


def read_checked_records(path: str | Path, scheme: LabelScheme | None = None, **options) -> list[Record]:
    return [record for _, record in iter_checked_records(path, scheme, **options)]


def validate_records(
    path: str | Path,
    scheme: LabelScheme | None = None,
    resolve_scheme: Callable[[str], LabelScheme] = get_scheme,
) -> Counter[tuple[str, str | None]]:
    """Counts of (scheme, label) over the file; label None for unlabelled records."""
    counts: Counter[tuple[str, str | None]] = Counter()
    for _, record in iter_checked_records(path, scheme, resolve_scheme=resolve_scheme):
        counts[record.scheme, record.label] += 1
    return counts
