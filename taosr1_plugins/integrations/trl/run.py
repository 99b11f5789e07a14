"""Run GRPO with TRL on CPU (or one GPU): our prompts, reward, offline selection and online refills."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.passn.difficulty import DifficultyRow
from taosr1_plugins.grpo.prompts import grpo_prompt_row, select_prompts
from taosr1_plugins.grpo.config import GrpoSettings
from taosr1_plugins.core.jsonl import atomic_write, write_jsonl
from taosr1_plugins.core.prompts import PromptStyle, prompt_style_of
from taosr1_plugins.core.records import Record
from taosr1_plugins.grpo.reward import build_reward
from taosr1_plugins.core.schemes import LabelScheme, scheme_of


def select_grpo_rows(
    records: Sequence[Record],
    difficulty: Sequence[DifficultyRow],
    scheme: LabelScheme,
    settings: GrpoSettings,
    style: PromptStyle | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Prompt rows, each repeated by its sampling weight, and the selection summary."""
    labelled, selection = select_prompts(records, difficulty, settings)
    by_id = {r.id: r for r in labelled}
    rows = [
        grpo_prompt_row(by_id[pid], scheme, settings.format, style, gold_response=settings.guided_replay)
        for pid in selection.weighted_ids(settings.seed)
    ]
    return rows, selection.summary


def run_grpo_trl(
    model: str | Path,
    records: Sequence[Record],
    difficulty: Sequence[DifficultyRow],
    out_dir: str | Path,
    settings: GrpoSettings | None = None,
    model_dir: str | Path | None = None,
    settings_source: str = "the GRPO recipe and grpo.overrides",
) -> dict[str, Any]:
    """Train ``settings.steps`` GRPO steps, save the policy to ``model_dir`` (default ``out_dir/model``); returns a
    summary. The caller writes the prompt style into the policy's folder (the main job's runner does).
    ``settings_source`` names where ``settings`` came from, for an error that no prompt was kept.

    Also writes ``out_dir/metrics.jsonl`` (TRL's per-step logs), ``selection.json`` and ``summary.json``.
    """
    from taosr1_plugins.integrations.trl.compat import load_policy
    from taosr1_plugins.integrations.trl.finetune import freeze_all_but_last

    settings = settings or GrpoSettings()
    reward = build_reward(settings.reward)  # before the policy loads: an unknown reward name is the settings' fault
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = Path(model_dir) if model_dir is not None else out_dir / "model"
    scheme = scheme_of(records[0])
    style = prompt_style_of(model)
    rows, selection = select_grpo_rows(records, difficulty, scheme, settings, style)
    if not rows:
        from taosr1_plugins.errors import UserError
        from taosr1_plugins.grpo.difficulty_mix import why_nothing_kept

        raise UserError(why_nothing_kept(selection, difficulty, settings_source))
    with atomic_write(out_dir / "selection.json") as fh:
        json.dump(selection, fh, indent=2)

    # loaded here, not by TRL, to add what TRL 0.24 expects of a transformers 4 model; GRPOTrainer requires
    # left padding for generation. fp32 master weights on every device: the trainers' bf16 autocasts the compute
    policy, tokenizer = load_policy(str(model), padding_side="left")
    freeze_all_but_last(policy, settings.trainable_layers)
    if settings.rollouts == "expected":
        trainer = _expected_reward_trainer(policy, tokenizer, records, rows, scheme, settings, reward, style, out_dir)
    else:
        trainer = _sampled_trainer(policy, tokenizer, rows, settings, reward, out_dir)
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    trainer.save_model(str(model_dir))  # with the tokenizer, both trainers' processing_class

    history = [entry for entry in trainer.state.log_history if "reward" in entry]
    write_jsonl(out_dir / "metrics.jsonl", history)
    totals = trainer.dynamic_sampling_totals
    steps = max(1.0, totals["steps"])
    summary = {
        "model": str(model_dir),
        "steps": trainer.state.global_step,
        "prompts": len({row["id"] for row in rows}),
        "prompt_rows_weighted": len(rows),
        "reward_first": history[0]["reward"] if history else None,
        "reward_last": history[-1]["reward"] if history else None,
        "frac_reward_zero_std_trl": _mean(e.get("frac_reward_zero_std") for e in history),
        "frac_zero_std_before": totals["zero_std_before"] / steps,
        "frac_zero_std_after": totals["zero_std_after"] / steps,
        "frac_groups_filtered": totals["groups_filtered"] / totals["groups_generated"] if totals["groups_generated"] else None,
        "groups_generated": int(totals["groups_generated"]),
        "rollouts": settings.rollouts,
        "num_generations": settings.num_generations if settings.rollouts == "sampled" else None,
        "extra_rollouts": int(totals["extra_rollouts"]),
        "guided_replay": settings.guided_replay,
        "groups_replayed": int(totals["groups_replayed"]),
        "accuracy_last": {k.split("/", 1)[1]: v for k, v in (history[-1] if history else {}).items() if k.startswith("accuracy/")},
        "wall_seconds": round(wall, 1),
        "selection": selection,
    }
    with atomic_write(out_dir / "summary.json") as fh:
        json.dump(summary, fh, indent=2)
    return summary


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _common_args(settings: GrpoSettings, out_dir: Path, on_gpu: bool) -> dict[str, Any]:
    """The trainer arguments both kinds of rollout set alike (TRL's GRPOConfig is a TrainingArguments)."""
    return dict(output_dir=str(out_dir / "trainer"), max_steps=settings.steps, learning_rate=settings.learning_rate,
                seed=settings.seed, logging_steps=1, save_strategy="no", report_to=[], use_cpu=not on_gpu)


def _sampled_trainer(policy: Any, tokenizer: Any, rows: list[dict[str, Any]], settings: GrpoSettings, reward: Any,
                     out_dir: Path) -> Any:
    """TRL's GRPOTrainer with online dynamic sampling: ``num_generations`` rollouts per prompt."""
    import torch
    from datasets import Dataset

    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward
    from taosr1_plugins.integrations.trl.trainer import DynamicSamplingGRPOTrainer  # imported first: it makes trl's trainers importable

    from trl import GRPOConfig  # noqa: I001

    on_gpu = torch.cuda.is_available()
    config = GRPOConfig(
        **_common_args(settings, out_dir, on_gpu),
        per_device_train_batch_size=settings.prompts_per_step * settings.num_generations,
        num_generations=settings.num_generations,
        max_prompt_length=settings.max_prompt_length,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        beta=settings.beta,
        bf16=on_gpu,
        disable_tqdm=False,  # TRL's bar: steps done, rate and ETA while a CPU run takes minutes per step
        # TRL recomputes activations by default: memory a 7B model on a GPU needs, ~30% more compute a CPU run does not
        **{"gradient_checkpointing": on_gpu, **settings.extra_trl_args},
    )
    return DynamicSamplingGRPOTrainer(
        model=policy,
        reward_funcs=[TrlRelevanceReward(reward=reward)],  # the same object: TRL's reward and dynamic sampling's correctness agree
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        dynamic_sampling=settings.dynamic_sampling,
        level_reward=reward,
        guided_replay=settings.guided_replay,
    )


def _expected_reward_trainer(policy: Any, tokenizer: Any, records: Sequence[Record], rows: list[dict[str, Any]],
                             scheme: LabelScheme, settings: GrpoSettings, reward: Any, style: PromptStyle | None,
                             out_dir: Path) -> Any:
    """``rollouts: expected``: the same prompts, drawn as often, scored by their exact expected reward."""
    import torch
    from datasets import Dataset
    from transformers import TrainingArguments

    from taosr1_plugins.core.precision import use_bf16
    from taosr1_plugins.deploy.scoring import scoring_prompt, verbalizer_token_ids
    from taosr1_plugins.grpo.expected_reward import level_rewards
    from taosr1_plugins.integrations.trl.expected_reward import ExpectedRewardGRPOTrainer, left_padded_batch

    by_id = {record.id: record for record in records}
    examples = []
    for row in rows:
        record = by_id[row["id"]]
        ids = tokenizer(scoring_prompt(tokenizer, record, scheme, style), add_special_tokens=False)["input_ids"]
        examples.append({"input_ids": ids[-settings.max_prompt_length:] if settings.max_prompt_length else ids,
                         "level_rewards": level_rewards(reward, scheme, record.label, settings.format),
                         "gold_index": scheme.keys.index(record.label)})
    on_gpu = torch.cuda.is_available()
    args = TrainingArguments(
        **_common_args(settings, out_dir, on_gpu),
        per_device_train_batch_size=settings.prompts_per_step,
        remove_unused_columns=False,
        # autocast where the device does bf16 natively (the weights stay fp32); extra_trl_args may say otherwise
        **{"bf16": use_bf16("auto")[0], **settings.extra_trl_args},
    )
    return ExpectedRewardGRPOTrainer(
        model=policy, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,  # saved with the model
        data_collator=lambda batch: left_padded_batch(batch, tokenizer.pad_token_id),
        level_token_ids=verbalizer_token_ids(tokenizer, scheme), level_keys=scheme.keys, beta=settings.beta,
        temperature=settings.temperature,
        accuracy_range=settings.accuracy_range if settings.dynamic_sampling.enabled else None,
    )
