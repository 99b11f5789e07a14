"""Running a registered importer by name (the Python side of `taosr1 data import`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme, get_scheme


def get_importer(name: str) -> Any:
    from taosr1_plugins import plugins

    return plugins.get("importer", name)


def import_records(
    source: str, path: str | Path, scheme: LabelScheme | str | None = None, limit: int | None = None
) -> Iterator[Record]:
    """Records from ``path`` via importer ``source``; ``scheme`` (a scheme, a registered name or a YAML
    path) defaults to the importer's own."""
    run = get_importer(source)
    resolved = scheme if isinstance(scheme, LabelScheme) else get_scheme(scheme or run.default_scheme)
    records = run(path, resolved)
    return itertools.islice(records, limit) if limit is not None else records
