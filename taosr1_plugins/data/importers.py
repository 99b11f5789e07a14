"""The built-in dataset importers (registered in builtin/importers.py): raw public judgement files -> Records.

An importer is ``importer(path, scheme=None) -> Iterator[Record]`` with ``importer.default_scheme``, the
name of the scheme its raw labels belong to. With another scheme, each raw label is mapped through that
scheme (its raw_labels, keys, names or buckets, see LabelScheme.to_key), so e.g. ESCI words can land on
a binary scheme a plugin registers. Every bad row raises DataError(file, line, field, message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taosr1_plugins.errors import DataError, data_error
from taosr1_plugins.data.html_text import html_to_text
from taosr1_plugins.core.jsonl import iter_jsonl_objects
from taosr1_plugins.data.rawfiles import iter_csv_rows, optional_text, required_text
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import LabelScheme, get_scheme
from taosr1_plugins.data.tags import tag_query

Importer = Callable[..., Iterator[Record]]


def importer(name: str, default_scheme: str) -> Callable[[Callable], Importer]:
    """Give a reader function its importer name and default scheme, and resolve ``scheme`` for it."""

    def wrap(read: Callable[[str, int, Any, LabelScheme, str], Iterator[Record]]) -> Importer:
        def run(path: str | Path, scheme: LabelScheme | str | None = None) -> Iterator[Record]:
            resolved = scheme if isinstance(scheme, LabelScheme) else get_scheme(scheme or default_scheme)
            return read(str(path), resolved, name)

        run.__name__ = run.__qualname__ = f"import_{name}"
        run.__doc__ = read.__doc__
        run.importer_name = name
        run.default_scheme = default_scheme
        return run

    return wrap


def map_label(scheme: LabelScheme, raw: Any, file: str, line: int, field: str) -> str:
    try:
        return scheme.to_key(raw)
    except ValueError as exc:
        raise DataError(file, line, field, f"unknown label: {exc}") from exc


def make_record(file: str, line: int, *, source: str, query: str, **fields: Any) -> Record:
    try:
        return Record(query=query, tags=tag_query(query), source=source, **fields)
    except ValidationError as exc:  # importers check fields first; this catches what they missed
        raise data_error(exc, file, line) from exc


@importer("crowdflower", default_scheme="crowdflower")
def import_crowdflower(file: str, scheme: LabelScheme, source: str) -> Iterator[Record]:
    """Crowdflower Search Results Relevance CSV (id, query, product_title, product_description,
    median_relevance, relevance_variance); label = median of three 1-4 ratings."""
    columns = ("id", "query", "product_title", "product_description", "median_relevance")
    for line, row in iter_csv_rows(file, columns):
        yield make_record(
            file,
            line,
            source=source,
            id=f"{source}-{required_text(row, 'id', file, line)}",
            query=required_text(row, "query", file, line),
            item=Item(
                title=required_text(row, "product_title", file, line),
                description=html_to_text(row["product_description"]),
            ),
            label=map_label(scheme, row["median_relevance"], file, line, "median_relevance"),
            scheme=scheme.name,
        )


@importer("home_depot", default_scheme="home_depot")
def import_home_depot(file: str, scheme: LabelScheme, source: str) -> Iterator[Record]:
    """Home Depot Product Search Relevance CSV (id, product_uid, product_title, search_term, relevance);
    label = mean of >=3 ratings on 1-3, bucketed by the scheme."""
    for line, row in iter_csv_rows(file, ("id", "product_title", "search_term", "relevance")):
        yield make_record(
            file,
            line,
            source=source,
            id=f"{source}-{required_text(row, 'id', file, line)}",
            query=required_text(row, "search_term", file, line),
            item=Item(title=required_text(row, "product_title", file, line)),
            label=map_label(scheme, row["relevance"], file, line, "relevance"),
            scheme=scheme.name,
        )


def esci_description(description: str | None, bullets: str | None) -> str | None:
    """Bullet points first, then the description.

    The bullets are Amazon's short "about this item" facts; prompts cut descriptions after a few
    hundred characters, so the densest text goes first. Item.attributes is for key: value pairs, which
    bullets are not.
    """
    bullet_lines = []
    for line in (bullets or "").splitlines():
        text = html_to_text(line)  # some sellers put <li>/<p> markup in bullets too
        if text:
            bullet_lines.append("- " + " ".join(text.split()))
    parts = ["\n".join(bullet_lines)] if bullet_lines else []
    text = html_to_text(description)
    if text:
        parts.append(text)
    return "\n\n".join(parts) or None


@importer("esci", default_scheme="esci")
def import_esci(file: str, scheme: LabelScheme, source: str) -> Iterator[Record]:
    """Amazon Shopping Queries (ESCI) CSV joined with product text (example_id, query, esci_label,
    product_title, product_description, product_bullet_point, product_brand, product_color, ...)."""
    for line, row in iter_csv_rows(file, ("example_id", "query", "esci_label", "product_title")):
        yield make_record(
            file,
            line,
            source=source,
            id=f"{source}-{required_text(row, 'example_id', file, line)}",
            query=required_text(row, "query", file, line),
            item=Item(
                title=required_text(row, "product_title", file, line),
                description=esci_description(row.get("product_description"), row.get("product_bullet_point")),
                brand=optional_text(row, "product_brand", file, line),
                color=optional_text(row, "product_color", file, line),
            ),
            label=map_label(scheme, row["esci_label"], file, line, "esci_label"),
            scheme=scheme.name,
        )


def kuaisearch_score(row: dict[str, Any], file: str, line: int) -> str:
    if "score" not in row:
        raise DataError(file, line, "score", "missing field")
    score = row["score"]
    # bool is an int in Python, but `true` is no score
    if isinstance(score, bool) or not isinstance(score, (int, float, str)):
        raise DataError(file, line, "score", f"expected a number, got {json_type(score)}")
    if isinstance(score, float) and score.is_integer():
        score = int(score)  # 2.0 is level "2"
    return str(score)


def json_type(value: Any) -> str:
    return {bool: "boolean", type(None): "null", list: "array", dict: "object"}.get(type(value), type(value).__name__)


@importer("kuaisearch", default_scheme="kuaisearch")
def import_kuaisearch(file: str, scheme: LabelScheme, source: str) -> Iterator[Record]:
    """KuaiSearch relevance JSONL (query, item_title, brand, seller_name, attr_value, score 0-3)."""
    # The file has no ids; file stem + line is stable for a given file and unique across files.
    stem = Path(file).name.split(".")[0]
    for line, row in iter_jsonl_objects(file):
        attributes = {}
        seller = optional_text(row, "seller_name", file, line)
        if seller:
            attributes["seller"] = seller
        attr_values = optional_text(row, "attr_value", file, line)
        if attr_values:
            attributes["attribute values"] = attr_values  # comma-joined values without names, kept as one text
        yield make_record(
            file,
            line,
            source=source,
            id=f"{source}-{stem}-{line}",
            query=required_text(row, "query", file, line),
            item=Item(
                title=required_text(row, "item_title", file, line),
                brand=optional_text(row, "brand", file, line),
                attributes=attributes,
            ),
            label=map_label(scheme, kuaisearch_score(row, file, line), file, line, "score"),
            scheme=scheme.name,
        )


BUILTIN_IMPORTERS = (import_crowdflower, import_home_depot, import_esci, import_kuaisearch)
