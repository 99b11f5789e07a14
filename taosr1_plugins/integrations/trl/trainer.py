"""TRL 0.24 GRPOTrainer with online dynamic sampling and per-level accuracy logging.

Extension point: ``GRPOTrainer._generate_and_score_completions(inputs)``, which ``_prepare_inputs``
calls once per generation batch and whose output dict it then shuffles and splits. We call the original
for the batch, drop zero-variance groups, call it again for fresh prompts (refills) while the extra
rollout budget lasts, and merge the kept groups back into one output of the original size.
``_calculate_rewards`` is wrapped to see each round's gathered rewards, correctness and completion lengths.

A group is kept when its rollouts differ in *correctness* (0/1, the gold label in a well-formed answer),
as OpenRLHF's ``--algo.dynamic_filtering_range 0 1`` keeps a group on its ``scores``: an all-wrong group
that differs only in format is dropped by both. The shaped reward stays the advantage signal.

Refills draw their own prompts from the train dataset, which is only consistent on one process; with
several processes (GPUs) use OpenRLHF's ``--algo.dynamic_filtering_enable`` instead.

Guided replay (TaoSR-AGRL's adaptive guided replay) wraps ``GRPOTrainer._generate``, which returns the
completion token ids before TRL computes log-probabilities, rewards and advantages: in a group whose
rollouts are all wrong, the last rollout becomes the gold response (the row's ``gold_response``). TRL then
scores it like any rollout, so the group has a correct member and a non-zero advantage, and its old and
reference log-probabilities are the policy's own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from taosr1_plugins.integrations.trl.compat import fix_trl_availability_flags

fix_trl_availability_flags()  # before trl's trainer modules are imported

from trl import GRPOTrainer
from trl.trainer.utils import pad

from taosr1_plugins.grpo.dynamic_sampling import DynamicSamplingSettings, groups_with_signal, plan_batch, refill_groups
from taosr1_plugins.grpo.reward import Reward, build_reward
from taosr1_plugins.integrations.trl.reward import completion_text

# per-row tensors in the output of _generate_and_score_completions, by the side their padding is on
LEFT_PADDED = {"prompt_ids", "prompt_mask"}
RIGHT_PADDED = {"completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps", "importance_sampling_ratio"}
PER_ROW = {"advantages"}
MERGEABLE = LEFT_PADDED | RIGHT_PADDED | PER_ROW | {"num_items_in_batch"}


class DynamicSamplingGRPOTrainer(GRPOTrainer):
    def __init__(
        self,
        *args: Any,
        dynamic_sampling: DynamicSamplingSettings | None = None,
        level_reward: Reward | None = None,
        guided_replay: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.dynamic_sampling = dynamic_sampling or DynamicSamplingSettings()
        self.level_reward = level_reward or build_reward()
        if self.dynamic_sampling.enabled and self.accelerator.num_processes > 1:
            raise ValueError("dynamic sampling refills run on one process only; use OpenRLHF for multi-GPU GRPO")
        self.guided_replay = guided_replay
        if guided_replay and self.use_vllm:
            # vLLM's sampling log-probabilities feed TRL's importance-sampling correction; a replayed row has none
            raise ValueError("guided replay needs generation by the policy itself (use_vllm=False)")
        self._generation_rows: list[dict[str, Any]] | None = None  # the rows of the round being generated
        self._replayed_rows: set[int] = set()  # their indices whose completion is the gold response
        self._round_rewards: list[torch.Tensor] = []
        self._round_correct: list[list[float]] = []
        self._round_lengths: list[torch.Tensor] = []  # completion tokens per row, before any truncation mask
        self._fresh_order: list[int] = []
        self._refill_generator = torch.Generator().manual_seed(self.args.seed)
        self.dynamic_sampling_totals = defaultdict(float)  # over the whole run, for the summary

    # --- reward observation ------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        device = rewards_per_func.device
        weighted = (rewards_per_func * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)
        self._round_rewards.append(weighted.detach().cpu())
        self._round_correct.append(self._log_level_accuracy(inputs, completions))
        # TRL's num_items_in_batch is the sum of these (gathered; one process here), unmasked
        self._round_lengths.append(torch.tensor([len(ids) for ids in completion_ids_list]))
        return rewards_per_func

    def _log_level_accuracy(self, inputs, completions) -> list[float]:
        """Per-row 0/1 correctness (what groups are filtered on), logged per gold level."""
        mode = "train" if self.model.training else "eval"
        per_level: dict[str, list[float]] = defaultdict(list)
        correct = []
        for row, (example, completion) in enumerate(zip(inputs, completions)):
            result = self.level_reward.score(completion_text(completion), _gold(example))
            correct.append(result.correct)
            if row not in self._replayed_rows:  # accuracy is the policy's own: a replayed gold row is not
                per_level[result.gold or "unknown"].append(result.correct)
                per_level["all"].append(result.correct)
        for level, values in per_level.items():
            self._metrics[mode][f"accuracy/{level}"].append(sum(values) / len(values))
        return correct

    # --- guided replay ------------------------------------------------------------------------------

    def _generate(self, prompts, images):
        prompt_ids, completion_ids, num_items_in_batch, logprobs, forward_kwargs = super()._generate(prompts, images)
        self._replayed_rows = set()
        rows = self._generation_rows
        if self.guided_replay and self.model.training and rows is not None and len(rows) == len(completion_ids):
            added = self._replay_gold(rows, completion_ids)
            # TRL's loss normaliser is the (gathered) sum of completion lengths: count the gold tokens instead
            num_items_in_batch = num_items_in_batch + self.accelerator.gather(
                torch.tensor(added, device=num_items_in_batch.device)
            ).sum()
        return prompt_ids, completion_ids, num_items_in_batch, logprobs, forward_kwargs

    def _replay_gold(self, rows: list[dict[str, Any]], completion_ids: list[list[int]]) -> int:
        """Put the gold response into each all-wrong group (in place); returns the change in completion tokens."""
        size = self.num_generations
        texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        added, replayed = 0, 0
        for start in range(0, len(rows) - size + 1, size):
            gold = rows[start].get("gold_response")
            label = _gold(rows[start])
            if not gold or any(self.level_reward.score(t, label).correct for t in texts[start : start + size]):
                continue
            ids = self.processing_class(gold, add_special_tokens=False)["input_ids"]
            limit = self.max_completion_length
            ids = ids[:limit] if len(ids) >= limit else ids + [self.eos_token_id]  # ends as a sampled rollout ends
            row = start + size - 1
            added += len(ids) - len(completion_ids[row])
            completion_ids[row] = ids
            self._replayed_rows.add(row)
            replayed += 1
        groups = max(1, len(rows) // size)
        self._metrics["train"]["guided_replay/frac_groups_replayed"].append(replayed / groups)
        self.dynamic_sampling_totals["groups_replayed"] += replayed
        return added

    def _score_round(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        self._generation_rows = rows
        try:
            return super()._generate_and_score_completions(rows)
        finally:
            self._generation_rows = None

    # --- dynamic sampling --------------------------------------------------------------------------

    def _generate_and_score_completions(self, inputs):
        for log in (self._round_rewards, self._round_correct, self._round_lengths):
            log.clear()
        first = self._score_round(inputs)
        mode = "train" if self.model.training else "eval"
        if mode != "train" or not self.dynamic_sampling.enabled:
            return first

        size = self.num_generations
        needed = len(inputs) // size
        rounds = [first]
        signal = [groups_with_signal(self._round_correct[-1], size)]
        spent = 0
        while True:
            have = sum(sum(flags) for flags in signal)
            count = refill_groups(needed - have, size, spent, self.dynamic_sampling)
            if count == 0:
                break
            fresh = [row for row in self._fresh_prompts(count) for _ in range(size)]
            rounds.append(self._score_round(fresh))
            signal.append(groups_with_signal(self._round_correct[-1], size))
            spent += len(fresh)

        plan = plan_batch(signal, needed)
        generated = sum(map(len, signal))
        zero_before = signal[0].count(False) / len(signal[0])
        zero_after = sum(not signal[r][g] for r, g in plan) / needed
        filtered = sum(flags.count(False) for flags in signal)
        metrics = self._metrics[mode]
        metrics["dynamic_sampling/frac_zero_std_before"].append(zero_before)
        metrics["dynamic_sampling/frac_zero_std_after"].append(zero_after)
        metrics["dynamic_sampling/frac_groups_filtered"].append(filtered / generated)
        metrics["dynamic_sampling/extra_rollouts"].append(float(spent))
        metrics["dynamic_sampling/refill_rounds"].append(float(len(rounds) - 1))
        kept_rewards = torch.cat(
            [self._round_rewards[r][g * size : (g + 1) * size] for r, g in plan]
        )
        metrics["dynamic_sampling/reward_after"].append(kept_rewards.mean().item())
        metrics["dynamic_sampling/reward_std_after"].append(kept_rewards.view(-1, size).std(dim=1).mean().item())
        totals = self.dynamic_sampling_totals
        totals["steps"] += 1
        totals["groups_generated"] += generated
        totals["groups_filtered"] += filtered
        totals["zero_std_before"] += zero_before
        totals["zero_std_after"] += zero_after
        totals["extra_rollouts"] += spent
        if len(rounds) == 1 and plan == [(0, g) for g in range(needed)]:
            return first  # nothing to merge: the batch is the first round, as generated
        return self._merge(rounds, plan, size)

    def _fresh_prompts(self, count: int) -> list[dict[str, Any]]:
        """``count`` prompt rows from the train dataset, walking random permutations of it."""
        rows = []
        while len(rows) < count:
            if not self._fresh_order:
                self._fresh_order = torch.randperm(len(self.train_dataset), generator=self._refill_generator).tolist()
            rows.append(self.train_dataset[self._fresh_order.pop()])
        return rows

    def _merge(self, rounds: list[dict[str, Any]], plan: list[tuple[int, int]], size: int) -> dict[str, Any]:
        unknown = set(rounds[0]) - MERGEABLE
        if unknown:
            raise NotImplementedError(f"dynamic sampling cannot merge {sorted(unknown)} (multimodal batches)")
        pieces: dict[str, list[torch.Tensor]] = defaultdict(list)
        for r, g in plan:
            rows = slice(g * size, (g + 1) * size)
            for key, value in rounds[r].items():
                if key != "num_items_in_batch" and value is not None:
                    pieces[key].extend(value[rows].unbind(0))
        merged: dict[str, Any] = {}
        for key, rows in pieces.items():
            if key in PER_ROW:
                merged[key] = torch.stack(rows)
            else:
                # re-pad: rounds were padded to their own longest prompt/completion
                value = self.pad_token_id if key in ("prompt_ids", "completion_ids") else 0
                side = "left" if key in LEFT_PADDED else "right"
                merged[key] = pad(list(rows), padding_value=value, padding_side=side)
        # the loss normaliser (DAPO loss) counts the completion tokens of the batch actually trained on, as
        # TRL 0.24 does: generated lengths, not completion_mask (which mask_truncated_completions zeroes)
        lengths = [self._round_lengths[r][g * size : (g + 1) * size] for r, g in plan]
        merged["num_items_in_batch"] = torch.cat(lengths).sum().to(merged["completion_mask"].device)
        return merged


def _gold(example: dict[str, Any]) -> Any:
    """A row's gold label as the reward reads it (a level key with a ``scheme`` column, or ``{"gold", "scheme"}``)."""
    label = example.get("label")
    if example.get("scheme") and not isinstance(label, dict):
        label = {"gold": label, "scheme": example["scheme"]}
    return label
