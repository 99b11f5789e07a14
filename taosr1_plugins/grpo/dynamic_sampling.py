"""Online dynamic sampling, framework-free: find the GRPO groups with no signal and plan a full batch.

A group whose rollouts all got the same reward has zero advantage (group-normalised reward), so it only
costs compute. The trainer integration generates a batch, drops such groups, generates more groups
for fresh prompts until the batch is full or the extra-rollout budget is spent (the idea of DAPO's
dynamic sampling), and fills any remaining slots with the dropped groups, so the batch keeps its size.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

# TRL counts a group as zero-variance when its reward std is close to 0 (torch.isclose defaults)
ZERO_STD_TOLERANCE = 1e-6


class DynamicSamplingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    max_extra_rollouts: int = Field(
        32, ge=0, description="extra completions a generation step may spend on refills (0 = filter-only reporting)"
    )
    oversample: float = Field(
        1.0, ge=1.0, description="refill rounds ask for this many times the missing groups (fewer rounds)"
    )


def groups_with_signal(rewards: Sequence[float], group_size: int) -> list[bool]:
    """One flag per consecutive group of ``group_size`` rewards: do its rewards differ at all?"""
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    flags = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start : start + group_size]
        flags.append(max(group) - min(group) > ZERO_STD_TOLERANCE)
    return flags


def plan_batch(signal_per_round: Sequence[Sequence[bool]], needed: int) -> list[tuple[int, int]]:
    """Which (round, group) pairs make up a batch of ``needed`` groups.

    Groups with signal come first, in generation order; if there are too few, the first round's
    zero-variance groups fill the rest (they add nothing to the policy loss, exactly as without filtering).
    """
    chosen = [(r, g) for r, flags in enumerate(signal_per_round) for g, ok in enumerate(flags) if ok][:needed]
    if len(chosen) < needed and signal_per_round:
        fillers = [(0, g) for g, ok in enumerate(signal_per_round[0]) if not ok]
        chosen += fillers[: needed - len(chosen)]
    if len(chosen) < needed:
        raise ValueError(f"cannot fill {needed} groups from {sum(map(len, signal_per_round))} generated")
    return chosen


def refill_groups(missing: int, group_size: int, spent: int, settings: DynamicSamplingSettings) -> int:
    """How many fresh groups the next refill round may generate (0 = stop)."""
    if missing <= 0 or not settings.enabled:
        return 0
    affordable = (settings.max_extra_rollouts - spent) // group_size
    return max(0, min(affordable, max(missing, round(missing * settings.oversample))))
