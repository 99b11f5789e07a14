"""``rollouts: expected``: GRPO's label objective for answer-first policies, exact, on transformers' Trainer.

The objective (grpo/expected_reward.py): per prompt, ``-J / sigma + beta * KL`` at the answer position, where
``J`` is the expected reward over the level distribution (temperature applied, as sampling would), ``sigma``
its standard deviation (detached: GRPO's group normalisation) and ``KL`` the exact KL divergence of the
policy's next-token distribution from the reference model's (the starting policy), over the whole vocabulary.
Dynamic sampling in exact form: a prompt counts only while the policy's p(gold) lies in ``accuracy_range``
(a group of G rollouts with accuracy outside it would be all right or all wrong). Everything else, the
optimizer, schedule, fp32 master weights with bf16 autocast, logging and saving, is the Trainer's own.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from transformers import Trainer

# a standard deviation below this is a group with no signal (GRPO adds 1e-4 to it before dividing)
STD_EPS = 1e-4


def left_padded_batch(rows: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Prompts padded on the left, so each row's last position is its answer position; positions counted from each
    row's first real token, as the deploy scorer does (a padded row sees what it would alone)."""
    width = max(len(row["input_ids"]) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, width - n:] = torch.tensor(row["input_ids"])
        mask[i, width - n:] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0),
        "level_rewards": torch.tensor([row["level_rewards"] for row in rows], dtype=torch.float32),
        "gold_index": torch.tensor([row["gold_index"] for row in rows], dtype=torch.long),
    }


class ExpectedRewardGRPOTrainer(Trainer):
    def __init__(self, *args: Any, level_token_ids: Sequence[int], level_keys: Sequence[str], beta: float,
                 temperature: float, accuracy_range: tuple[float, float] | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # the reference: the policy as it starts, frozen (TRL's GRPO keeps one the same way when beta > 0)
        self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False) if beta > 0 else None
        self.level_token_ids = torch.tensor(list(level_token_ids), dtype=torch.long)
        self.level_keys, self.beta, self.temperature, self.accuracy_range = list(level_keys), beta, temperature, accuracy_range
        self._step_metrics: dict[str, list[float]] = defaultdict(list)
        self.dynamic_sampling_totals: dict[str, float] = defaultdict(float)  # the summary's, as the sampled trainer's

    def _next_token_logprobs(self, model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                       position_ids=inputs["position_ids"], logits_to_keep=1).logits[:, -1, :].float()
        return torch.log_softmax(logits / self.temperature, dim=-1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards, gold = inputs["level_rewards"], inputs["gold_index"]
        logp = self._next_token_logprobs(model, inputs)
        probs = logp[:, self.level_token_ids.to(logp.device)].exp()  # the rest of the mass: malformed, reward 0
        expected = (probs * rewards).sum(dim=-1)
        std = ((probs * rewards.square()).sum(dim=-1) - expected.square()).clamp(min=0).sqrt()
        p_gold = probs.gather(1, gold[:, None]).squeeze(1)
        signal = std.detach() > STD_EPS
        if self.accuracy_range is not None:
            low, high = self.accuracy_range
            signal &= (p_gold.detach() >= low) & (p_gold.detach() <= high)
        per_prompt = -expected / (std.detach() + STD_EPS)
        kl = torch.zeros_like(expected)
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logp = self._next_token_logprobs(self.ref_model, inputs)
            kl = (logp.exp() * (logp - ref_logp)).sum(dim=-1)
            per_prompt = per_prompt + self.beta * kl
        kept = signal.float()
        loss = (per_prompt * kept).sum() / kept.sum().clamp(min=1.0)
        self._record(expected.detach(), p_gold.detach(), kl.detach(), signal, gold)
        return loss

    def _record(self, expected: torch.Tensor, p_gold: torch.Tensor, kl: torch.Tensor, signal: torch.Tensor,
                gold: torch.Tensor) -> None:
        m, n, kept = self._step_metrics, len(expected), int(signal.sum())
        # the keys TRL's GRPO logs, so one report plots both kinds of run
        m["reward"].append(float(expected.mean()))
        m["accuracy/all"].append(float(p_gold.mean()))
        m["kl"].append(float(kl.mean()))
        m["frac_reward_zero_std"].append(1.0 - kept / n)
        m["dynamic_sampling/frac_zero_std_before"].append(1.0 - kept / n)
        m["dynamic_sampling/frac_zero_std_after"].append(1.0 - kept / n)
        if kept:
            m["dynamic_sampling/reward_after"].append(float(expected[signal].mean()))
        for index, key in enumerate(self.level_keys):
            of_level = gold == index
            if of_level.any():
                m[f"accuracy/{key}"].append(float(p_gold[of_level].mean()))
        totals = self.dynamic_sampling_totals
        totals["steps"] += 1
        totals["groups_generated"] += n
        totals["groups_filtered"] += n - kept
        totals["zero_std_before"] += 1.0 - kept / n
        totals["zero_std_after"] += 1.0 - kept / n

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs:  # a training step's log, not the run's closing one
            logs = {**logs, **{key: sum(values) / len(values) for key, values in self._step_metrics.items()}}
            self._step_metrics.clear()
        super().log(logs, *args, **kwargs)
