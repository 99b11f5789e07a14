"""Test data for the LLaMA-Factory tests: real ESCI records with a templated CoT and varied attributes.

The ESCI sample has no CoT and no attribute dicts; the templated reasoning and the attributes added to
some rows are test scaffolding (stated here), so the think/answer targets and the Arrow shape of varying
attributes are exercised on real queries, titles and descriptions.
"""

from __future__ import annotations

from pathlib import Path

from taosr1_plugins.builtin.importers import import_esci
from taosr1_plugins.jsonl import write_jsonl
from taosr1_plugins.records import Record
from taosr1_plugins.schemes import get_scheme

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ESCI_SAMPLE = SHARED_DATA / "esci_sample" / "esci_200_with_titles.csv.gz"

ATTRIBUTE_VARIANTS = ({}, {"pack": "6"}, {"material": "cotton", "size": "L"}, {})


def esci_records_with_cot(limit: int | None = None) -> list[Record]:
    scheme = get_scheme("esci")
    records = []
    for i, record in enumerate(import_esci(ESCI_SAMPLE)):
        if limit is not None and i >= limit:
            break
        level = scheme.level(record.label)
        cot = (
            f'The query "{record.query}" names the product wanted. The item is "{record.item.title[:80]}". '
            f"Comparing them point by point, the item is {level.name.lower()} for this query."
        )
        item = record.item.model_copy(update={"attributes": dict(ATTRIBUTE_VARIANTS[i % len(ATTRIBUTE_VARIANTS)])})
        records.append(record.model_copy(update={"cot": cot, "item": item}))
    return records


def write_records(path: Path, records: list[Record]) -> Path:
    write_jsonl(path, records)
    return path
