"""OpenRLHF's GRPO prompt files: one file per difficulty bucket plus the bucket probabilities express the offline
difficulty mix without patching OpenRLHF (``--data.prompt_dataset a,b --data.prompt_probs p,q``), beside the
reward settings the Ray workers load (``reward.yaml``) and the length limits (``openrlhf_prompts.env``), all
read by recipes/openrlhf/grpo_taosr1.sh.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.jsonl import atomic_write, write_jsonl
from taosr1_plugins.core.prompts import PromptStyle
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.grpo.config import GrpoSettings
from taosr1_plugins.grpo.difficulty_mix import Selection
from taosr1_plugins.grpo.prompts import grpo_prompt_row

OPENRLHF_ENV_FILE = "openrlhf_prompts.env"  # sourced by recipes/openrlhf/grpo_taosr1.sh
ALL_PROMPTS_FILE = "prompts_all.jsonl"


# OpenRLHF's blending_datasets passes the probabilities to datasets.interleave_datasets, whose numpy
# rng.choice(p=...) rejects a sum off 1 by more than ~1e-8: six rounded decimals (1/3 -> 0.333333) fail.
PROBABILITY_DIGITS = 9


def probability_strings(probabilities: Sequence[float], digits: int = PROBABILITY_DIGITS) -> list[str]:
    """Decimal strings whose digits sum to exactly 1 (largest-remainder rounding of the normalised values),
    so the floats OpenRLHF parses from them sum to 1 within float rounding."""
    if not probabilities or any(p < 0 for p in probabilities) or sum(probabilities) <= 0:
        raise ValueError(f"bucket probabilities must be >= 0 with a positive sum, got {list(probabilities)}")
    unit = 10**digits
    total = sum(probabilities)
    exact = [p / total * unit for p in probabilities]
    # a kept bucket never rounds to 0: interleave_datasets' all_exhausted would then never finish it
    units = [max(1, int(x)) if p > 0 else 0 for p, x in zip(probabilities, exact)]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - units[i], reverse=True)
    for i in by_remainder[: max(0, unit - sum(units))]:
        units[i] += 1
    for i in sorted(range(len(units)), key=lambda i: units[i], reverse=True)[: max(0, sum(units) - unit)]:
        units[i] -= 1
    return [f"{u // unit}.{u % unit:0{digits}d}" for u in units]


def bucket_file(bucket: str) -> str:
    return f"prompts_{bucket}.jsonl"


REWARD_FILE = "reward.yaml"  # TAOSR1_REWARD_CONFIG of the Ray job
# our prompts (system text, definitions, the pair) fit in this; GrpoSettings.max_prompt_length may say otherwise
DEFAULT_PROMPT_TOKENS = 1024


def openrlhf_lengths(settings: GrpoSettings) -> dict[str, int]:
    """OpenRLHF's length limits from the GRPO settings, the one place they are set for TRL and OpenRLHF:
    ``--rollout.max_new_tokens`` is the completion budget and ``--data.max_len`` (also vLLM's
    ``max_model_len``) leaves room for the prompt, which OpenRLHF would otherwise cut from the left."""
    prompt = settings.max_prompt_length or DEFAULT_PROMPT_TOKENS
    return {"MAX_NEW_TOKENS": settings.max_completion_length, "MAX_LEN": prompt + settings.max_completion_length}


def write_openrlhf_prompts(
    records: Sequence[Record],
    selection: Selection,
    scheme: LabelScheme,
    out_dir: str | Path,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    settings: GrpoSettings | None = None,
    style: PromptStyle | None = None,
) -> dict[str, Any]:
    """Write the chosen prompts: one file per kept bucket, all of them together, the bucket probabilities
    and length limits as OpenRLHF arguments (``openrlhf_prompts.env``), the reward settings
    (``reward.yaml``, for the run's format and scheme) and the selection summary. Returns the manifest."""
    settings = settings or GrpoSettings(format=fmt)
    out_dir = Path(out_dir)
    by_id = {record.id: record for record in records}
    rows_by_bucket: dict[str, list[dict[str, Any]]] = {}
    for choice in selection.chosen:
        rows_by_bucket.setdefault(choice.bucket, []).append(grpo_prompt_row(by_id[choice.id], scheme, fmt, style))

    probabilities = selection.bucket_probabilities()
    files: dict[str, str] = {}
    for bucket, rows in rows_by_bucket.items():
        path = out_dir / bucket_file(bucket)
        write_jsonl(path, rows)
        files[bucket] = str(path.resolve())
    write_jsonl(out_dir / ALL_PROMPTS_FILE, [row for rows in rows_by_bucket.values() for row in rows])

    buckets = [b for b in probabilities if b in files]
    manifest = {
        "prompt_dataset": ",".join(files[b] for b in buckets),
        "prompt_probs": ",".join(probability_strings([probabilities[b] for b in buckets])),
        "files": files,
        "all_prompts": str((out_dir / ALL_PROMPTS_FILE).resolve()),
        "rows": {b: len(rows_by_bucket[b]) for b in buckets},
        "selection": selection.summary,
    }
    with atomic_write(out_dir / "manifest.json") as fh:
        json.dump(manifest, fh, indent=2)
    # without this file the script would fall back to a think-then-answer reward for an answer-first run
    with atomic_write(out_dir / REWARD_FILE) as fh:
        # a YAML scheme by its file: the reward process loads it, and the labels' scheme name then resolves there
        yaml.safe_dump({**settings.reward.model_dump(mode="json"), "scheme": scheme.file or scheme.name}, fh,
                       sort_keys=False)
    with atomic_write(out_dir / OPENRLHF_ENV_FILE) as fh:
        fh.write("# written by `taosr1 grpo prepare`; sourced by recipes/openrlhf/grpo_taosr1.sh\n")
        fh.write(f"PROMPT_DATASET={shlex.quote(manifest['prompt_dataset'])}\n")
        fh.write(f"PROMPT_PROBS={shlex.quote(manifest['prompt_probs'])}\n")
        for key, value in openrlhf_lengths(settings).items():
            fh.write(f"{key}={value}\n")
    return manifest
