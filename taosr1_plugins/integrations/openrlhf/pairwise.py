"""DPO pairs as OpenRLHF pairwise JSONL, read by ``openrlhf.cli.train_dpo`` with
``--data.prompt_key prompt --data.chosen_key chosen --data.rejected_key rejected --data.apply_chat_template``.

With a prompt key and the chat template, OpenRLHF's ``RewardDataset`` renders ``prompt`` with the
generation prompt and ``prompt + chosen`` / ``prompt + rejected`` as whole chats, and keeps the text
after the prompt as each response; so ``prompt`` is the chat message list (system + user) and
``chosen``/``rejected`` are lists holding one assistant message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import atomic_write

PROMPT_KEY, CHOSEN_KEY, REJECTED_KEY = "prompt", "chosen", "rejected"


def pairwise_row(pair) -> dict[str, Any]:
    return {
        PROMPT_KEY: [{"role": m["role"], "content": m["content"]} for m in pair.messages],
        CHOSEN_KEY: [{"role": "assistant", "content": pair.chosen}],
        REJECTED_KEY: [{"role": "assistant", "content": pair.rejected}],
        "id": pair.id,
    }


def write_pairwise_jsonl(pairs: Sequence, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as fh:
        for pair in pairs:
            fh.write(json.dumps(pairwise_row(pair), ensure_ascii=False) + "\n")
    return path


def write_openrlhf_pairs(pairs: Sequence, out_dir: Path, name: str) -> dict[str, str]:
    """The OpenRLHF pair writer for :func:`taosr1_plugins.passn.pairs.build_pairs`; returns its summary entry."""
    return {"file": str(write_pairwise_jsonl(pairs, Path(out_dir) / f"{name}.openrlhf.jsonl"))}
