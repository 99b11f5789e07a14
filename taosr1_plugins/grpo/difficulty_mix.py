"""Offline difficulty-based prompt selection for GRPO, from the pass@N difficulty file.

A prompt the model always gets right gives every rollout the same reward, hence zero advantage: it is
dropped. Hard prompts carry the most signal and are up-weighted. Never-right prompts are hard or
mislabelled, so they are kept but capped to a share of the selection. The result is a list of
(prompt id, bucket, weight) plus a summary of what was kept; trainers without per-prompt weights get
the weights as repetitions (:meth:`Selection.weighted_ids`) or as per-bucket file probabilities
(OpenRLHF ``--data.prompt_probs``).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taosr1_plugins.passn.difficulty import DifficultyBucket, DifficultyRow

UNKNOWN = "unknown"  # a prompt with no row in the difficulty file
BUCKETS = (*(b.value for b in DifficultyBucket), UNKNOWN)


class DifficultyMix(BaseModel):
    """How many of which prompts to train on; a bucket's weight 0 drops it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weights: dict[str, float] = Field(
        default_factory=lambda: {"always": 0.0, "easy": 0.5, "medium": 1.0, "hard": 2.0, "never": 1.0, UNKNOWN: 1.0},
        description="sampling weight per difficulty bucket; missing buckets weigh 0",
    )
    never_max_share: float = Field(
        0.1, ge=0, le=1, description="never-right prompts (maybe label noise) may be at most this share of those kept"
    )
    max_prompts: int | None = Field(None, ge=1, description="keep at most this many, drawn by weight")
    seed: int = 0

    @field_validator("weights")
    @classmethod
    def _known_buckets(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(BUCKETS))
        if unknown:
            raise ValueError(f"unknown buckets {unknown}; buckets are {', '.join(BUCKETS)}")
        if any(w < 0 for w in value.values()):
            raise ValueError("weights must be >= 0")
        return value


UNIFORM = DifficultyMix(weights={b: 1.0 for b in BUCKETS}, never_max_share=1.0)


@dataclass(frozen=True)
class PromptChoice:
    id: str
    bucket: str
    weight: float


@dataclass
class Selection:
    chosen: list[PromptChoice]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.chosen]

    def bucket_probabilities(self) -> dict[str, float]:
        """Each bucket's share of the total weight: the chance a drawn prompt comes from it."""
        totals: Counter[str] = Counter()
        for choice in self.chosen:
            totals[choice.bucket] += choice.weight
        grand = sum(totals.values())
        return {b: totals[b] / grand for b in BUCKETS if totals[b] > 0} if grand else {}

    def weighted_ids(self, seed: int = 0) -> list[str]:
        """Ids repeated in proportion to weight (relative to the smallest kept weight), for trainers that
        sample uniformly; fractional repeats are rounded at random so the expectation is exact."""
        if not self.chosen:
            return []
        unit = min(c.weight for c in self.chosen)
        rng = random.Random(seed)
        out: list[str] = []
        for choice in self.chosen:
            copies = choice.weight / unit
            whole = math.floor(copies)
            out.extend([choice.id] * (whole + (rng.random() < copies - whole)))
        rng.shuffle(out)
        return out


def mix_by_difficulty(ids: Sequence[str], difficulty: Iterable[DifficultyRow], mix: DifficultyMix | None = None) -> Selection:
    """Choose and weight the prompts ``ids`` (record ids, in order) by their difficulty rows."""
    mix = mix or DifficultyMix()
    rng = random.Random(mix.seed)
    by_id = {row.id: row for row in difficulty}
    bucket_of = {pid: (by_id[pid].bucket.value if pid in by_id else UNKNOWN) for pid in ids}

    candidates = [PromptChoice(pid, bucket_of[pid], mix.weights.get(bucket_of[pid], 0.0)) for pid in ids]
    kept = [c for c in candidates if c.weight > 0]

    never = [c for c in kept if c.bucket == DifficultyBucket.NEVER.value]
    others = [c for c in kept if c.bucket != DifficultyBucket.NEVER.value]
    never_limit = (
        len(never) if mix.never_max_share >= 1 else math.floor(mix.never_max_share * len(others) / (1 - mix.never_max_share))
    )
    never_capped = max(0, len(never) - never_limit)
    if never_capped:
        keep_never = {id(c) for c in rng.sample(never, never_limit)}
        kept = [c for c in kept if c.bucket != DifficultyBucket.NEVER.value or id(c) in keep_never]

    if mix.max_prompts is not None and len(kept) > mix.max_prompts:
        # weighted sampling without replacement (Efraimidis-Spirakis keys), then back in input order
        keyed = sorted(kept, key=lambda c: rng.random() ** (1.0 / c.weight), reverse=True)
        chosen_ids = {id(c) for c in keyed[: mix.max_prompts]}
        kept = [c for c in kept if id(c) in chosen_ids]

    selection = Selection(kept)
    available = Counter(bucket_of.values())
    taken = Counter(c.bucket for c in kept)
    selection.summary = {
        "prompts": len(ids),
        "kept": len(kept),
        "per_bucket": {
            b: {"available": available[b], "kept": taken[b], "weight": mix.weights.get(b, 0.0)}
            for b in BUCKETS
            if available[b]
        },
        "never_capped": never_capped,
        "without_difficulty": available[UNKNOWN],
        "difficulty_rows_unmatched": len(set(by_id) - set(bucket_of)),
        "bucket_probabilities": selection.bucket_probabilities(),
    }
    return selection


def why_nothing_kept(summary: dict[str, Any], difficulty: Sequence[DifficultyRow], settings: str) -> str:
    """Why a selection (its ``summary``) kept no prompt: which buckets the prompts fell in, what dropped each, and
    the likeliest cause behind it, read from the ``difficulty`` rows. ``settings`` names where the sampling
    settings came from (a --config file, the run's grpo section, the defaults), for the keys to change."""
    if not summary["prompts"]:
        return "no labelled prompt to choose from"
    per = summary["per_bucket"]
    dropped = []
    for bucket, info in per.items():
        if info["weight"] == 0:
            dropped.append(f"{info['available']} '{bucket}' (sampling.weights.{bucket} is 0)")
        elif bucket == DifficultyBucket.NEVER.value:
            dropped.append(f"{info['available']} 'never' (sampling.never_max_share keeps never-right prompts only "
                           "as a share of the others kept, and no other was kept)")
    text = f"no GRPO prompt kept of {summary['prompts']}: " + ", ".join(dropped) + f"; sampling settings: {settings}"
    return text + _cause(per, difficulty)


def _cause(per: dict[str, Any], difficulty: Sequence[DifficultyRow]) -> str:
    buckets = set(per)
    if buckets == {DifficultyBucket.NEVER.value}:
        # never right: either the model cannot answer in the format at all, or it answers and is always wrong
        rows = [row for row in difficulty if row.bucket is DifficultyBucket.NEVER]
        unformatted = sum(row.format_ok_rate == 0 for row in rows)
        if rows and unformatted == len(rows):
            return (f". Every prompt is 'never' and none of the {sum(row.n for row in rows)} pass@N samples was "
                    "well formed: the sampled model does not answer in the format GRPO rewards (was it trained with "
                    "SFT in that format, and was pass@N run with the same --format?)")
        return (". Every prompt is 'never': the sampled model got none right (do the difficulty file's model and "
                "labels belong to these records?); sampling.never_max_share: 1 trains on them anyway")
    if buckets == {DifficultyBucket.ALWAYS.value}:
        return ". Every prompt is 'always': the model answers all of them right, so GRPO has nothing to learn from them"
    if buckets == {UNKNOWN}:
        return f". No prompt has a difficulty row: pass a difficulty file or give '{UNKNOWN}' a weight"
    return ""


class DifficultySampler:
    """The ``difficulty`` prompt-sampler plugin: ``DifficultySampler(**mix_options).select(ids, rows)``."""

    def __init__(self, mix: DifficultyMix | None = None, **options: Any):
        self.mix = mix or DifficultyMix(**options)

    def select(self, ids: Sequence[str], difficulty: Iterable[DifficultyRow]) -> Selection:
        return mix_by_difficulty(ids, difficulty, self.mix)


def uniform_sampler(**options: Any) -> DifficultySampler:
    """Every prompt once with weight 1, whatever its difficulty (the no-dynamic-sampling baseline)."""
    return DifficultySampler(UNIFORM.model_copy(update=options))
