"""What a table importer reads from a raw file: which column fills which record field (the column map) and how
raw labels become level keys (the label map). ``ImportOptions`` is the one declaration of the command line's
``--map``, ``--labels`` and ``--delimiter`` and of the run config's ``data.map``, ``data.labels`` and
``data.delimiter``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.errors import UserError

# Record fields a column can fill; `bullets` (one selling point a line) is put before the description, and
# `attributes.NAME` fills item.attributes[NAME].
FIELDS = ("id", "query", "title", "description", "bullets", "brand", "color", "category", "label")
ATTRIBUTE = "attributes."
REQUIRED = ("query", "title")  # a record has no other required text; no id: rows are numbered by line


def is_field(name: str) -> bool:
    return name in FIELDS or (name.startswith(ATTRIBUTE) and bool(name[len(ATTRIBUTE):].strip()))


def parse_pairs(text: str) -> dict[str, str]:
    """``"a=b,c=d"`` -> ``{"a": "b", "c": "d"}``, both sides stripped; ``"a="`` keeps an empty value. Raises
    ValueError on a pair without ``=`` or a key given twice (the second would silently win)."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected key=value, got {part.strip()!r}")
        if key in pairs:
            raise ValueError(f"{key!r} is given twice")
        pairs[key] = value.strip()
    return pairs


def _as_text_mapping(value: Any) -> Any:
    # YAML reads `3: E` with an int key; a raw label is text whatever the config's spelling
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    return value


class ImportOptions(BaseModel):
    """How a table importer reads a file, on top of its source's own column map."""

    model_config = ConfigDict(extra="forbid")

    map: dict[str, str] = Field(
        default_factory=dict,
        description="record field=raw column, e.g. id=query_id,title=product_title,label=rating, on top of the "
        "importer's own map (csv, tsv, jsonl, parquet: columns named like the fields); fields: "
        + ", ".join(FIELDS) + ", attributes.NAME; an empty column (label=) means the file has none",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="raw label=level key, e.g. 3=E,2=S,1=C,0=I (only these raw labels are accepted); "
        "default: the scheme maps raw labels (its keys, level names, raw_labels, buckets)",
    )
    delimiter: str | None = Field(None, description="CSV field delimiter, e.g. ';' (default: ',' for csv, tab for tsv)")

    @field_validator("map", "labels", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text_mapping(value)

    @field_validator("map")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = [name for name in value if not is_field(name)]
        if unknown:
            raise ValueError(f"unknown record field {', '.join(map(repr, unknown))}; fields: {', '.join(FIELDS)}, "
                             "attributes.NAME")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not raw.strip() or not key.strip() for raw, key in value.items()):
            raise ValueError("raw labels and level keys must not be empty")
        return {raw.strip(): key.strip() for raw, key in value.items()}

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delimiter(cls, value: Any) -> Any:
        if value in ("\\t", "tab"):  # what a shell passes for a tab
            return "\t"
        if isinstance(value, str) and len(value) != 1:
            raise ValueError(f"a delimiter is one character, got {value!r}")
        return value

    def given(self) -> bool:
        return bool(self.map or self.labels or self.delimiter)


class ImportOptionsError(UserError, ValueError):
    """A column map, label map or delimiter that cannot work; ``field`` is the ImportOptions field to change."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ColumnMap:
    """Record field -> raw column. A column of an ``optional`` field may be absent from the file (a data set's
    extras, like ESCI's bullets); every other mapped column must be there."""

    columns: dict[str, str]
    optional: frozenset[str] = field(default_factory=frozenset)

    def merged(self, overrides: Mapping[str, str]) -> ColumnMap:
        """This map with the user's entries on top: each one's column becomes required, an empty one drops
        its field; query and title must keep a column."""
        columns = dict(self.columns)
        optional = set(self.optional)
        for name, column in overrides.items():
            optional.discard(name)
            if column:
                columns[name] = column
            else:
                columns.pop(name, None)
        unmapped = [name for name in REQUIRED if name not in columns]
        if unmapped:
            raise ImportOptionsError("map", f"the column map gives no column for {' and '.join(unmapped)} "
                                     f"(map: {self.describe(columns)})")
        return ColumnMap(columns, frozenset(optional & set(columns)))

    @property
    def required_columns(self) -> list[str]:
        return list(dict.fromkeys(column for name, column in self.columns.items() if name not in self.optional))

    @property
    def attributes(self) -> dict[str, str]:
        """item.attributes name -> column."""
        return {name[len(ATTRIBUTE):]: column for name, column in self.columns.items() if name.startswith(ATTRIBUTE)}

    @staticmethod
    def describe(columns: Mapping[str, str]) -> str:
        return ",".join(f"{name}={column}" for name, column in columns.items()) or "empty"


def label_mapper(scheme: LabelScheme, labels: Mapping[str, str]) -> Callable[[str], str]:
    """Raw label -> level key: through ``labels`` when given (only its raw labels are accepted: a raw label
    left out is a mistake, not a key by accident), else through the scheme's own rules (``LabelScheme.to_key``).
    Every key of ``labels`` is checked here, before a row is read."""
    if not labels:
        return scheme.to_key
    bad = sorted({key for key in labels.values() if key not in scheme.keys})
    if bad:
        raise ImportOptionsError("labels", f"label map: {', '.join(map(repr, bad))} is not a level of scheme "
                                 f"{scheme.name!r} (levels: {', '.join(scheme.keys)})")

    def to_key(raw: str) -> str:
        text = str(raw).strip()
        if text in labels:
            return labels[text]
        raise ValueError(f"{text!r} is not in the label map ({', '.join(labels)})")

    return to_key
