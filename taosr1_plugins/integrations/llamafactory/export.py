"""Export taosr1 records as a LLaMA-Factory dataset: one JSONL file plus its dataset_info.json entry.

The rows are written in the Arrow-stable shape of ``rows.record_to_row``; the entry's ``formatting``
(``taosr1_cot`` or ``taosr1_post_cot``) selects our converter, which builds prompts and targets at load
time. This module does not import LLaMA-Factory, so exporting works in any environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taosr1_plugins.data.validation import iter_checked_records
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.core.prompts import PromptStyle
from taosr1_plugins.integrations.llamafactory.rows import PROMPT_STYLE_COLUMN, record_to_row

DATASET_INFO = "dataset_info.json"  # the file name LLaMA-Factory reads from dataset_dir
FORMATTING = {ResponseFormat.THINK_ANSWER: "taosr1_cot", ResponseFormat.ANSWER_FIRST: "taosr1_post_cot"}


@dataclass
class ExportResult:
    name: str
    data_file: Path
    dataset_info: Path
    records: int
    without_cot: int


def default_name(data: Path) -> str:
    name = data.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def _checked_rows(data: Path, allow_missing_cot: bool, counts: dict[str, int], style: PromptStyle):
    # SFT needs labels; repeated ids are allowed (a record may be upsampled)
    for line, record in iter_checked_records(data, require_label=True, unique_ids=False):
        where = f"record {record.id!r}: "
        if not record.cot:
            if not allow_missing_cot:
                raise DataError(
                    str(data), line, "cot", where + "no cot (generate one with `taosr1 cot`, or pass "
                    "--allow-missing-cot to train on the answer alone)"
                )
            counts["without_cot"] += 1
        counts["records"] += 1
        yield {**record_to_row(record), PROMPT_STYLE_COLUMN: style.model_dump_json()}


def _read_dataset_info(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(str(path), exc.lineno, None, f"invalid JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(str(path), None, None, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})") from exc
    if not isinstance(info, dict):
        raise DataError(str(path), None, None, "dataset_info.json must hold a JSON object")
    return info


def export_llamafactory(
    data: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    allow_missing_cot: bool = False,
    style: PromptStyle | None = None,
) -> ExportResult:
    """Write ``out_dir/NAME.jsonl`` and add (or replace) entry NAME in ``out_dir/dataset_info.json``.

    Each row carries the prompt ``style`` (the student's prompt), which our converter renders at load time.
    Every record is validated first (DataError names file, line or record, and field); nothing is
    replaced unless all of them pass.
    """
    data, out_dir = Path(data), Path(out_dir)
    name = name or default_name(data)
    fmt = ResponseFormat(fmt)
    info_path = out_dir / DATASET_INFO
    info = _read_dataset_info(info_path)  # fail on a broken file before writing anything
    data_file = out_dir / f"{name}.jsonl"
    counts = {"records": 0, "without_cot": 0}
    with atomic_write(data_file) as fh:
        for row in _checked_rows(data, allow_missing_cot, counts, style or PromptStyle()):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        if not counts["records"]:
            raise DataError(str(data), None, None, "no records")
    info[name] = {"file_name": data_file.name, "formatting": FORMATTING[fmt]}
    with atomic_write(info_path) as fh:
        fh.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return ExportResult(name, data_file, info_path, counts["records"], counts["without_cot"])
