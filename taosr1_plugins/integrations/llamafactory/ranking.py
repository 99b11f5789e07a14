"""DPO pairs as a LLaMA-Factory ranking dataset: sharegpt rows + a ``"ranking": true`` dataset_info entry.

Each row holds the system prompt in a ``system`` column, the prompt turns in ``conversations`` (one user
turn: odd length, as LLaMA-Factory requires of pairwise sharegpt rows) and ``chosen``/``rejected`` as
single assistant message dicts, which LLaMA-Factory's sharegpt converter turns into pairwise examples
for ``stage: dpo`` (and ``rm``). Messages use OpenAI-style ``role``/``content`` keys, declared in ``tags``.
This module does not import LLaMA-Factory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.integrations.llamafactory.export import DATASET_INFO, _read_dataset_info

RANKING_ENTRY = {
    "formatting": "sharegpt",
    "ranking": True,
    "columns": {"messages": "conversations", "system": "system", "chosen": "chosen", "rejected": "rejected"},
    "tags": {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
        "system_tag": "system",
    },
}


def ranking_row(pair) -> dict[str, Any]:
    system = "".join(m["content"] for m in pair.messages if m["role"] == "system")
    turns = [{"role": m["role"], "content": m["content"]} for m in pair.messages if m["role"] != "system"]
    return {
        "id": pair.id,
        "system": system,
        "conversations": turns,
        "chosen": {"role": "assistant", "content": pair.chosen},
        "rejected": {"role": "assistant", "content": pair.rejected},
    }


def write_ranking_dataset(pairs: Sequence, out_dir: str | Path, name: str) -> Path:
    """Write ``out_dir/<name>.jsonl`` and add (or replace) entry ``name`` in ``out_dir/dataset_info.json``."""
    out_dir = Path(out_dir)
    info_path = out_dir / DATASET_INFO
    info = _read_dataset_info(info_path)  # fail on a broken file before writing anything
    data_file = out_dir / f"{name}.jsonl"
    with atomic_write(data_file) as fh:
        for pair in pairs:
            fh.write(json.dumps(ranking_row(pair), ensure_ascii=False) + "\n")
    info[name] = {"file_name": data_file.name, **RANKING_ENTRY}
    with atomic_write(info_path) as fh:
        fh.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return data_file


def write_llamafactory_pairs(pairs: Sequence, out_dir: Path, name: str) -> dict[str, str]:
    """The LLaMA-Factory pair writer for :func:`taosr1_plugins.passn.pairs.build_pairs`; returns its summary entry."""
    return {"dataset_dir": str(out_dir), "dataset": name, "file": str(write_ranking_dataset(pairs, out_dir, name))}
