"""The row shape our LLaMA-Factory dataset files use, and the way back to a Record.

LLaMA-Factory loads dataset files with ``datasets.load_dataset("json")``, which infers one Arrow schema
from the first chunk (10 MB) of the file and casts later chunks to it. Plain Record JSON breaks that:

- ``item.attributes`` is a dict whose keys vary between rows; Arrow turns it into one struct with the
  union of all keys (every row gets every key, missing ones as None), and a key first seen after the
  first chunk fails the load;
- a field that is null throughout the first chunk is typed ``null`` and a later string cannot be cast;
- an empty list is typed ``list<null>``, and a later chunk's ``list<struct>`` cannot be cast to it.

So every field of the exported row is a string in every row: optional strings are ``""`` when absent
(never null), and ``item.attributes`` and ``tags`` are JSON-encoded strings (``"{}"``, ``"[]"``).
``record_from_row`` also accepts plain Record rows (small hand-registered files), dropping the
None-filled struct keys.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from taosr1_plugins.core.records import Item, Record

ITEM_TEXT_FIELDS = ("description", "brand", "color", "category")
# the exporter's prompt style (JSON of prompts.PromptStyle), one string column like every other field
PROMPT_STYLE_COLUMN = "prompt_style"

RECORD_TEXT_FIELDS = ("label", "cot", "source", "scheme_file")


def record_to_row(record: Record) -> dict[str, Any]:
    item = record.item
    return {
        "id": record.id,
        "query": record.query,
        "item": {
            "title": item.title,
            **{field: getattr(item, field) or "" for field in ITEM_TEXT_FIELDS},
            "attributes": json.dumps(item.attributes, ensure_ascii=False),
        },
        "label": record.label or "",
        "scheme": record.scheme,
        "scheme_file": record.scheme_file or "",  # the converter reads a YAML scheme from it
        "cot": record.cot or "",
        "tags": json.dumps(record.tags, ensure_ascii=False),
        "source": record.source or "",
    }


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _attributes(value: Any) -> dict[str, str]:
    value = _decoded(value)
    if not value:
        return {}
    if isinstance(value, dict):  # a plain Record row: Arrow filled the keys other rows had with None
        return {str(k): str(v) for k, v in value.items() if v is not None}
    raise ValueError(f"item.attributes must be a JSON object or a dict, got {type(value).__name__}")


def record_from_row(row: dict[str, Any]) -> Record:
    """Rebuild the Record of one dataset row; raises ValueError naming the record and field."""
    data = {key: value for key, value in row.items() if value is not None and key != PROMPT_STYLE_COLUMN}
    for field in RECORD_TEXT_FIELDS:
        if data.get(field) == "":
            del data[field]
    item = dict(data.get("item") or {})
    for field in ITEM_TEXT_FIELDS:
        if not item.get(field):
            item.pop(field, None)
    try:
        if "tags" in data:
            data["tags"] = _decoded(data["tags"])
        item["attributes"] = _attributes(item.get("attributes"))
        data["item"] = Item.model_validate(item)
        return Record.model_validate(data)
    except (ValidationError, ValueError, TypeError) as exc:
        raise ValueError(f"record {row.get('id')!r} is not a taosr1 record row: {exc}") from exc
