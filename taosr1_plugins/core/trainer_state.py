"""A training run's summary from a Hugging Face Trainer's log history (LLaMA-Factory and TRL alike)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def summarise_log_history(history: Sequence[dict[str, Any]], global_step: int | None) -> dict[str, Any]:
    losses = [entry["loss"] for entry in history if "loss" in entry]
    final = next((entry for entry in reversed(history) if "train_runtime" in entry), {})
    steps = global_step or 0
    return {
        "steps": steps,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "train_loss": final.get("train_loss"),
        "train_runtime": final.get("train_runtime"),
        "seconds_per_step": round(final["train_runtime"] / steps, 2) if steps and "train_runtime" in final else None,
    }


def training_summary(output_dir: Path) -> dict[str, Any]:
    """The summary of the ``trainer_state.json`` a Trainer saved in ``output_dir``."""
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    return summarise_log_history(state.get("log_history", []), state.get("global_step"))
