"""Whether a finished GRPO run trained at all, from its summary (integrations/trl/run.py).

GRPO's advantage is a group's rewards normalised by their spread: a group whose rollouts all got the same reward
adds no gradient, and dynamic sampling can only refill from prompts that have a spread. When no group of any step
had one, the run spent its compute and saved the start model unchanged; it still exits 0, so it is said loudly.
"""

from __future__ import annotations

from typing import Any


def stalled_policy(summary: dict[str, Any]) -> str | None:
    """A warning when every group of every step had zero reward variance after dynamic sampling, else None.

    Takes the summary of `run_grpo_trl` or the main job's GRPO stage outputs; a summary without the key (another
    framework's) says nothing."""
    after, steps = summary.get("frac_zero_std_after"), summary.get("steps")
    if after is None or not steps or after < 1.0:
        return None
    reward = summary.get("reward_first")
    if summary.get("rollouts") == "expected":
        why = ("no prompt's p(gold) lay inside accuracy_range (or its level rewards had no spread), so no prompt "
               "added a gradient; widen grpo's accuracy_range or set dynamic_sampling.enabled: false")
    else:
        extra = summary.get("extra_rollouts", 0)
        alike = ("every rollout scored 0: none was well formed and right" if reward == 0
                 else "the rollouts of each prompt scored alike")
        why = (f"{alike}, also after {extra} extra rollouts of dynamic sampling, so every advantage was 0; "
               "an SFT model that answers in the rewarded format, more rollouts per prompt (num_generations), "
               "a higher temperature or harder prompts give groups a spread")
    return (f"GRPO did not move the policy: every group of its {steps} step{'s' if steps != 1 else ''} had zero "
            f"reward variance (frac_zero_std_after 1.0, reward {reward}): {why}")
