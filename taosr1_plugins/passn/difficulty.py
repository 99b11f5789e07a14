"""The per-prompt difficulty file: pass@N statistics that stage 2 writes and stage 3 reads.

One JSONL row per prompt (record id). The GRPO stage picks and weights prompts by ``bucket``; the
thresholds that define the buckets are recorded in every row so a file is self-describing.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DifficultyBucket(str, Enum):
    ALWAYS = "always"  # every sample right: no preference or advantage signal, dropped for GRPO
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"
    NEVER = "never"  # no sample right: hard, or label noise; capped for GRPO

    def __str__(self) -> str:
        return self.value


class DifficultyThresholds(BaseModel):
    """pass rate >= easy -> easy; >= medium -> medium; otherwise hard (0 and 1 are never/always)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    easy: float = Field(0.75, gt=0, lt=1, description="pass rate >= this: easy.")
    medium: float = Field(0.25, gt=0, lt=1, description="pass rate >= this: medium (below: hard).")

    @model_validator(mode="after")
    def _ordered(self) -> DifficultyThresholds:
        if self.medium > self.easy:
            raise ValueError("thresholds must satisfy medium <= easy")
        return self

    def bucket(self, correct: int, n: int) -> DifficultyBucket:
        if n <= 0 or correct <= 0:
            return DifficultyBucket.NEVER
        if correct >= n:
            return DifficultyBucket.ALWAYS
        rate = correct / n
        if rate >= self.easy:
            return DifficultyBucket.EASY
        if rate >= self.medium:
            return DifficultyBucket.MEDIUM
        return DifficultyBucket.HARD


class DifficultyRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="the record id of the prompt")
    gold: str = Field(description="gold level key")
    n: int = Field(ge=0, description="samples drawn")
    correct: int = Field(ge=0, description="samples with a valid format and the gold label")
    pass_rate: float = Field(ge=0, le=1, description="correct / n: the unbiased pass@1 estimate")
    format_ok_rate: float = Field(ge=0, le=1)
    majority: str | None = Field(None, description="most frequent parsed label (None if nothing parsed)")
    bucket: DifficultyBucket
    thresholds: DifficultyThresholds = Field(default_factory=DifficultyThresholds)

    @model_validator(mode="after")
    def _consistent(self) -> DifficultyRow:
        if self.correct > self.n:
            raise ValueError(f"correct ({self.correct}) exceeds n ({self.n})")
        return self


def difficulty_row(
    record_id: str,
    gold: str,
    labels: list[str | None],
    format_ok: list[bool],
    thresholds: DifficultyThresholds | None = None,
) -> DifficultyRow:
    """Summarise N parsed samples of one prompt."""
    from collections import Counter

    thresholds = thresholds or DifficultyThresholds()
    n = len(labels)
    correct = sum(1 for label, ok in zip(labels, format_ok) if ok and label == gold)
    parsed = Counter(label for label in labels if label is not None)
    return DifficultyRow(
        id=record_id,
        gold=gold,
        n=n,
        correct=correct,
        pass_rate=correct / n if n else 0.0,
        format_ok_rate=sum(format_ok) / n if n else 0.0,
        majority=parsed.most_common(1)[0][0] if parsed else None,
        bucket=thresholds.bucket(correct, n),
        thresholds=thresholds,
    )
