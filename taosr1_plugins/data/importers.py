"""The built-in dataset importers (registered in builtin/importers.py): raw judgement tables -> Records.

An importer is ``importer(path, scheme=None) -> Iterator[Record]`` with ``importer.default_scheme``, the
name of the scheme its raw labels belong to. With another scheme, each raw label is mapped through that
scheme (its raw_labels, keys, names or buckets, see LabelScheme.to_key), so e.g. ESCI words can land on
a binary scheme a plugin registers. Every bad row raises DataError(file, line, field, message).

All built-ins are one importer, ``TableImporter``: a file format and a column map. ``csv``, ``tsv``, ``jsonl``
and ``parquet`` read any table whose columns the user maps (``--map``); each public data set is a preset, its
own format, map, scheme and id prefix. Both take ``ImportOptions`` (a column map on top of their own, a label
map, a delimiter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import LabelScheme, SchemeError, get_scheme
from taosr1_plugins.data.columns import ColumnMap, ImportOptions, ImportOptionsError, label_mapper
from taosr1_plugins.data.html_text import html_to_text
from taosr1_plugins.data.rawfiles import optional_text, required_text
from taosr1_plugins.data.tables import Table, open_table
from taosr1_plugins.data.tags import tag_query
from taosr1_plugins.errors import DataError, data_error

Importer = Callable[..., Iterator[Record]]


def map_label(to_key: Callable[[str], str], raw: Any, file: str, line: int, field: str) -> str:
    try:
        return to_key(raw)
    except ValueError as exc:
        raise DataError(file, line, field, f"unknown label: {exc}") from exc


def make_record(file: str, line: int, *, source: str, query: str, **fields: Any) -> Record:
    try:
        return Record(query=query, tags=tag_query(query), source=source, **fields)
    except ValidationError as exc:  # importers check fields first; this catches what they missed
        raise data_error(exc, file, line) from exc


def json_type(value: Any) -> str:
    return {bool: "boolean", type(None): "null", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def key_text(row: dict[str, Any], column: str, file: str, line: int) -> str:
    """An id or raw label: text, or a number (JSON and Parquet keep ids and ratings as numbers; 2.0 is "2")."""
    if column not in row:
        raise DataError(file, line, column, "missing field")
    value = row[column]
    # bool is an int in Python, but `true` is neither an id nor a rating
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataError(file, line, column, f"expected text or a number, got {json_type(value)}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise DataError(file, line, column, "empty")
    return text


def item_description(description: str | None, bullets: str | None) -> str | None:
    """Bullet points first, then the description.

    The bullets are short "about this item" facts (Amazon's, in ESCI); prompts cut descriptions after a few
    hundred characters, so the densest text goes first. Item.attributes is for key: value pairs, which
    bullets are not. Both may carry HTML, which shop exports are full of.
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


esci_description = item_description  # the name it had when only ESCI had bullets


def importer_scheme(run: Any, scheme: LabelScheme | str | None) -> LabelScheme:
    """``scheme`` (a scheme, a registered name or a YAML path), else the importer's own; the generic importers
    have none, and need one named."""
    if isinstance(scheme, LabelScheme):
        return scheme
    name = scheme or getattr(run, "default_scheme", None)
    if not name:
        name = getattr(run, "importer_name", None) or getattr(run, "__name__", "?")
        raise SchemeError(f"importer {name!r} reads no data set of its own, so it has no label scheme: "
                          "name one (--scheme, or data.scheme in a run config): a registered name or a YAML file")
    return get_scheme(name)


class TableImporter:
    """A table format and a column map -> Records; see the module docstring.

    Everything that can be checked without reading rows is checked when it is called, before it returns:
    the scheme, the merged column map, the label map against the scheme's levels, and every missing column
    at once. Rows are read as the records are consumed.
    """

    def __init__(self, name: str, fmt: str, columns: ColumnMap, *, default_scheme: str | None = None,
                 id_prefix: str = "", doc: str = ""):
        self.importer_name = name
        self.format = fmt
        self.columns = columns
        self.default_scheme = default_scheme
        self.id_prefix = id_prefix
        self.__doc__ = doc
        self.__name__ = self.__qualname__ = f"import_{name}"

    def __repr__(self) -> str:
        return f"<importer {self.importer_name!r}: {self.format}, {ColumnMap.describe(self.columns.columns)}>"

    def plan(self, scheme: LabelScheme | str | None, options: ImportOptions) -> tuple[LabelScheme, ColumnMap, Callable]:
        """What a call with these arguments would read, checked without opening the file (the run config's
        preflight asks this too)."""
        resolved = importer_scheme(self, scheme)
        if options.delimiter is not None and self.format not in ("csv", "tsv"):
            raise ImportOptionsError("delimiter", f"a delimiter is for csv and tsv files; importer "
                                     f"{self.importer_name!r} reads {self.format}")
        return resolved, self.columns.merged(options.map), label_mapper(resolved, options.labels)

    def __call__(self, path: str | Path, scheme: LabelScheme | str | None = None,
                 options: ImportOptions | None = None) -> Iterator[Record]:
        resolved, columns, to_key = self.plan(scheme, options or ImportOptions())
        table = open_table(path, self.format, (options.delimiter if options else None))
        table.check(columns.required_columns)
        return self._records(table, columns, resolved, to_key)

    def _records(self, table: Table, columns: ColumnMap, scheme: LabelScheme,
                 to_key: Callable[[str], str]) -> Iterator[Record]:
        file, source, names = table.file, self.importer_name, columns.columns
        # The file has no ids: its name and the line are stable for a given file and unique across files.
        stem = Path(file).name.split(".")[0]
        first_line_of: dict[str, int] = {}
        for line, row in table.rows(list(names.values())):
            if "id" in names:
                record_id = self.id_prefix + key_text(row, names["id"], file, line)
            else:
                record_id = f"{self.id_prefix}{stem}-{line}"
            if record_id in first_line_of:  # found here, not by a later `data validate`, with the remedy
                raise DataError(file, line, names.get("id"), f"duplicate id {record_id!r} (first on line "
                                f"{first_line_of[record_id]}); map id to a column unique per row, or map none "
                                "to number the rows")
            first_line_of[record_id] = line
            yield make_record(
                file,
                line,
                source=source,
                id=record_id,
                query=required_text(row, names["query"], file, line),
                item=self._item(row, names, columns.attributes, file, line),
                label=map_label(to_key, key_text(row, names["label"], file, line), file, line, names["label"])
                if "label" in names else None,
                scheme=scheme.name,
                scheme_file=scheme.file,
            )

    @staticmethod
    def _item(row: dict[str, Any], names: Mapping[str, str], attribute_columns: Mapping[str, str],
              file: str, line: int) -> Item:
        def text(name: str) -> str | None:
            return optional_text(row, names[name], file, line) if name in names else None

        attributes = {}
        for name, column in attribute_columns.items():
            value = optional_text(row, column, file, line)
            if value:
                attributes[name] = value
        return Item(
            title=required_text(row, names["title"], file, line),
            description=item_description(text("description"), text("bullets")),
            brand=text("brand"),
            color=text("color"),
            category=text("category"),
            attributes=attributes,
        )


# --- the generic importers: the user maps the columns -----------------------------------------------------

# Without --map: columns named like the record's fields; query, title and label must be there.
GENERIC_MAP = ColumnMap(
    {"id": "id", "query": "query", "title": "title", "description": "description", "brand": "brand",
     "color": "color", "category": "category", "label": "label"},
    optional=frozenset({"id", "description", "brand", "color", "category"}),
)
GENERIC_DOC = ("Any {what} of judgements: map its columns with --map (default: id, query, title, description, "
               "brand, color, category, label), its raw labels with --labels or the scheme's own rules.")

import_csv = TableImporter("csv", "csv", GENERIC_MAP, doc=GENERIC_DOC.format(what="CSV file (--delimiter)"))
import_tsv = TableImporter("tsv", "tsv", GENERIC_MAP, doc=GENERIC_DOC.format(what="tab-separated file"))
import_jsonl = TableImporter("jsonl", "jsonl", GENERIC_MAP,
                             doc=GENERIC_DOC.format(what="JSONL file (one object a line)"))
import_parquet = TableImporter("parquet", "parquet", GENERIC_MAP, doc=GENERIC_DOC.format(what="Parquet file"))

# --- the public data sets: presets of the generic importer -------------------------------------------------

import_crowdflower = TableImporter(
    "crowdflower",
    "csv",
    ColumnMap({"id": "id", "query": "query", "title": "product_title", "description": "product_description",
               "label": "median_relevance"}),
    default_scheme="crowdflower",
    id_prefix="crowdflower-",
    doc="Crowdflower Search Results Relevance CSV (id, query, product_title, product_description, "
    "median_relevance, relevance_variance); label = median of three 1-4 ratings.",
)

import_home_depot = TableImporter(
    "home_depot",
    "csv",
    ColumnMap({"id": "id", "query": "search_term", "title": "product_title", "label": "relevance"}),
    default_scheme="home_depot",
    id_prefix="home_depot-",
    doc="Home Depot Product Search Relevance CSV (id, product_uid, product_title, search_term, relevance); "
    "label = mean of >=3 ratings on 1-3, bucketed by the scheme.",
)

import_esci = TableImporter(
    "esci",
    "csv",
    ColumnMap(
        {"id": "example_id", "query": "query", "title": "product_title", "label": "esci_label",
         "description": "product_description", "bullets": "product_bullet_point", "brand": "product_brand",
         "color": "product_color"},
        optional=frozenset({"description", "bullets", "brand", "color"}),
    ),
    default_scheme="esci",
    id_prefix="esci-",
    doc="Amazon Shopping Queries (ESCI) CSV joined with product text (example_id, query, esci_label, "
    "product_title, product_description, product_bullet_point, product_brand, product_color, ...).",
)

import_kuaisearch = TableImporter(
    "kuaisearch",
    "jsonl",
    ColumnMap(
        # attr_value: comma-joined values without names, kept as one text
        {"query": "query", "title": "item_title", "brand": "brand", "attributes.seller": "seller_name",
         "attributes.attribute values": "attr_value", "label": "score"},
        optional=frozenset({"brand", "attributes.seller", "attributes.attribute values"}),
    ),
    default_scheme="kuaisearch",
    id_prefix="kuaisearch-",
    doc="KuaiSearch relevance JSONL (query, item_title, brand, seller_name, attr_value, score 0-3).",
)

BUILTIN_IMPORTERS = (import_crowdflower, import_home_depot, import_esci, import_kuaisearch)
GENERIC_IMPORTERS = (import_csv, import_tsv, import_jsonl, import_parquet)
