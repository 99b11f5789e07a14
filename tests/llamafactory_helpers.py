"""Test data for the LLaMA-Factory tests: real ESCI records with a templated CoT and varied attributes.

The ESCI sample has no CoT and no attribute dicts; the templated reasoning and the attributes added to
some rows are test scaffolding (stated here), so the think/answer targets and the Arrow shape of varying
attributes are exercised on real queries, titles and descriptions.
"""

from __future__ import annotations

from pathlib import Path

from taosr1_plugins.data.importers import import_esci
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import get_scheme

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


def assert_trained(result, out: Path, steps: int) -> None:
    """A LLaMA-Factory run exited cleanly, saved the step-``steps`` checkpoint and the final model, and
    logged one finite, positive loss per step."""
    import json
    import math

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / f"checkpoint-{steps}" / "model.safetensors").stat().st_size > 0
    assert (out / "model.safetensors").stat().st_size > 0
    logged = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in logged if "loss" in entry]
    assert len(losses) == steps and all(math.isfinite(loss) and loss > 0 for loss in losses), losses


def esci_lf_dataset(folder: Path, limit: int = 32) -> Path:
    """The first ``limit`` ESCI records with a templated CoT, exported as LLaMA-Factory dataset ``esci_cot`` in
    ``folder/lf`` (returned)."""
    from taosr1_plugins.integrations.llamafactory.export import export_llamafactory

    data = write_records(folder / "esci_cot.jsonl", esci_records_with_cot(limit=limit))
    export_llamafactory(data, folder / "lf", name="esci_cot")
    return folder / "lf"
