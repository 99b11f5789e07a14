"""Running a registered importer by name (the Python side of `taosr1 data import` and the main job's import)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.data.columns import ImportOptions, ImportOptionsError


def get_importer(name: str) -> Any:
    from taosr1_plugins import plugins

    return plugins.get("importer", name)


def takes_options(run: Any) -> bool:
    """Whether an importer reads a column map, label map and delimiter (the built-in table importers do; a
    plugin's importer that is not one takes ``(path, scheme)`` only)."""
    from taosr1_plugins.data.importers import TableImporter

    return isinstance(run, TableImporter)


def check_import(source: str, scheme: LabelScheme | str | None = None,
                 options: ImportOptions | None = None) -> LabelScheme:
    """Everything an import can be refused for without opening its file; returns the scheme its records get."""
    from taosr1_plugins.data.importers import importer_scheme

    run = get_importer(source)
    resolved = importer_scheme(run, scheme)
    if options is not None and options.given():
        if not takes_options(run):
            raise ImportOptionsError("map", f"importer {source!r} takes no column map, label map or delimiter")
        run.plan(resolved, options)
    return resolved


def import_records(
    source: str,
    path: str | Path,
    scheme: LabelScheme | str | None = None,
    limit: int | None = None,
    options: ImportOptions | None = None,
) -> Iterator[Record]:
    """Records from ``path`` via importer ``source``; ``scheme`` (a scheme, a registered name or a YAML
    path) defaults to the importer's own. A wrong scheme, map or missing column raises here, not while the
    records are read."""
    run = get_importer(source)
    resolved = check_import(source, scheme, options)
    records = run(path, resolved, options) if options is not None and options.given() else run(path, resolved)
    return itertools.islice(records, limit) if limit is not None else records
