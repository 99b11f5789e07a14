"""SFT and DPO with TRL: the main job's `framework: trl`, on the same data as the LLaMA-Factory route.

SFT rows are tokenised here, not by TRL: TRL 0.24 measures the prompt with ``apply_chat_template(...,
tokenize=True)``, which transformers 5 returns as a dict, so its completion mask would cover the prompt
too. We render prompt and answer through the tokenizer's chat template ourselves and pass ``input_ids``
plus ``completion_mask``; TRL then trains on the answer tokens only. DPO reads the pairwise file that
``taosr1 passn pairs`` writes for OpenRLHF, which is TRL's conversational preference format as it is.

Recipes are YAML files of ``SFTConfig`` / ``DPOConfig`` arguments (``recipes/trl/``), plus two of
LLaMA-Factory's arguments with its meaning: ``max_samples`` (use only the first N rows) and
``freeze_trainable_layers`` (train only the last N decoder layers, as its ``finetuning_type: freeze``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.errors import DataError
from taosr1_plugins.core.formats import ResponseFormat, answer_only, render_response
from taosr1_plugins.core.hf_chat import render_chat
from taosr1_plugins.core.prompts import PromptStyle, build_messages
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import scheme_of
from taosr1_plugins.integrations.trl.compat import load_policy


def tokenized_sft_row(
    tokenizer: Any, record: Record, fmt: ResponseFormat | str, max_length: int | None, style: PromptStyle | None = None
) -> dict[str, list[int]]:
    scheme = scheme_of(record)
    messages = build_messages(record, scheme, fmt, style)
    answer = render_response(record.cot, record.label, scheme, fmt) if record.cot else answer_only(record.label, scheme)
    prompt = render_chat(tokenizer, messages)
    completion = answer + (tokenizer.eos_token or "")
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
        if full.startswith(prompt):  # the template's own end-of-turn tokens close the answer
            completion = full[len(prompt):]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    input_ids = (prompt_ids + completion_ids)[:max_length]
    mask = ([0] * len(prompt_ids) + [1] * len(completion_ids))[:max_length]
    return {"input_ids": input_ids, "completion_mask": mask}


def label_weighted_loss(label_weight: float, prefix_tokens: int):
    """A ``compute_loss_func`` for answer-first SFT: the label token counts ``label_weight`` times.

    In ``<answer>L</answer><think>…</think>`` the label L is one token among the ~35 of a concise trace (and
    ~200 of a full one), and the rest is easy text conditioned on it; with every token weighed alike a small
    model learns the format and the trace long before it learns L. The label is the ``prefix_tokens``-th
    completion token (after ``<answer>``). The sum is normalised like the plain loss, by the batch's
    completion tokens (``num_items_in_batch``), so ``label_weight: 1`` is the plain loss.
    """
    import torch

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs.logits[:, :-1, :].float()
        targets = labels[:, 1:]
        per_token = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="none"
        ).view(targets.shape)
        weights = (targets != -100).float()
        has_completion = weights.any(dim=1)
        start = weights.argmax(dim=1)  # the first completion position of each row
        position = (start + prefix_tokens).clamp(max=targets.size(1) - 1)
        rows = torch.arange(targets.size(0), device=targets.device)[has_completion]
        weights[rows, position[has_completion]] *= label_weight
        total = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
        return (per_token * weights).sum() / total

    return loss


def freeze_all_but_last(model: Any, layers: int | None) -> Any:
    """Train only the last ``layers`` decoder layers (None: every parameter), as LLaMA-Factory's freeze tuning.

    On CPU this is the cheapest lever per example after the prompt's length: nothing below the trained
    layers keeps activations or runs backward, so a step costs the forward pass plus a few layers' backward.
    The embeddings (tied to the LM head in SmolLM2) stay frozen, as they do in LLaMA-Factory."""
    if layers is None:
        return model
    decoder = model.get_decoder().layers
    if isinstance(layers, bool) or not isinstance(layers, int) or not 0 < layers <= len(decoder):
        raise DataError(None, None, "freeze_trainable_layers",
                        f"must be between 1 and {len(decoder)} (the model's decoder layers), got {layers!r}")
    model.requires_grad_(False)
    for layer in decoder[len(decoder) - layers:]:
        layer.requires_grad_(True)
    return model


def _trainer_args(args: dict[str, Any], output_dir: Path) -> tuple[dict[str, Any], int | None, int | None]:
    import torch

    args = dict(args)
    max_samples = args.pop("max_samples", None)
    trainable_layers = args.pop("freeze_trainable_layers", None)
    args.setdefault("report_to", [])
    args.setdefault("save_strategy", "no")
    args.setdefault("use_cpu", not torch.cuda.is_available())
    args["output_dir"] = str(output_dir / "trainer")
    return args, max_samples, trainable_layers


def trainer_config(stage: str, args: dict[str, Any], output_dir: Path) -> tuple[Any, int | None, int | None]:
    """(the stage's TRL config, max_samples, freeze_trainable_layers) from its arguments, as the stage trains
    with it; the backend builds it at preflight too, so TRL's own checks of the values run before any stage."""
    from taosr1_plugins.integrations.trl.compat import fix_trl_availability_flags

    fix_trl_availability_flags()
    from trl import DPOConfig, SFTConfig

    trainer_args, max_samples, trainable_layers = _trainer_args(args, output_dir)
    if stage == "sft":  # the completion mask is ours (tokenized_sft_row): TRL trains on the answer tokens only
        return SFTConfig(**trainer_args, completion_only_loss=True), max_samples, trainable_layers
    return DPOConfig(**trainer_args), max_samples, trainable_layers


def _summary(trainer, started: float) -> dict[str, Any]:
    from taosr1_plugins.core.trainer_state import summarise_log_history

    summary = summarise_log_history(trainer.state.log_history, trainer.state.global_step)
    args = trainer.args
    # steps x batch, as bench_pipeline counts a LLaMA-Factory stage from its train.yaml (a TRL stage writes none)
    seen = trainer.state.global_step * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return {**summary, "examples_seen": seen, "wall_seconds": round(time.perf_counter() - started, 1)}


def run_sft_trl(
    model: str | Path,
    records: Sequence[Record],
    output_dir: str | Path,
    args: dict[str, Any],
    fmt: ResponseFormat | str,
    style: PromptStyle | None = None,
    label_weight: float = 1.0,
) -> dict[str, Any]:
    """Fine-tune on labelled records (their ``cot`` rendered in ``fmt``; answer only without one); saves to ``output_dir``.

    ``label_weight`` (answer-first only) weighs the label token against the rest (:func:`label_weighted_loss`)."""
    from datasets import Dataset

    output_dir = Path(output_dir)
    policy, tokenizer = load_policy(str(model))
    from trl import SFTTrainer  # after load_policy: it makes trl's trainers importable

    config, max_samples, trainable_layers = trainer_config("sft", args, output_dir)
    freeze_all_but_last(policy, trainable_layers)
    labelled = [record for record in records if record.label is not None][:max_samples]
    dataset = Dataset.from_list([tokenized_sft_row(tokenizer, r, fmt, config.max_length, style) for r in labelled])
    started = time.perf_counter()
    loss_func = None
    if label_weight != 1.0:
        if ResponseFormat(fmt) is not ResponseFormat.ANSWER_FIRST:
            raise ValueError("label_weight needs the answer-first format: the label is not at a fixed position otherwise")
        from taosr1_plugins.deploy.scoring import ANSWER_PREFIX

        prefix = len(tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
        loss_func = label_weighted_loss(label_weight, prefix)
    trainer = SFTTrainer(model=policy, args=config, train_dataset=dataset, processing_class=tokenizer,
                         compute_loss_func=loss_func)
    trainer.train()
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    return {**_summary(trainer, started), "examples": len(labelled)}


def run_dpo_trl(model: str | Path, pairs_file: str | Path, output_dir: str | Path, args: dict[str, Any]) -> dict[str, Any]:
    """DPO on the conversational pairs file (``prompt``/``chosen``/``rejected`` message lists); saves to ``output_dir``."""
    from datasets import Dataset

    from taosr1_plugins.core.jsonl import iter_jsonl_objects

    output_dir = Path(output_dir)
    policy, tokenizer = load_policy(str(model))
    from trl import DPOTrainer

    config, max_samples, trainable_layers = trainer_config("dpo", args, output_dir)
    freeze_all_but_last(policy, trainable_layers)
    rows = [{key: row[key] for key in ("prompt", "chosen", "rejected")} for _, row in iter_jsonl_objects(pairs_file)][:max_samples]
    started = time.perf_counter()
    trainer = DPOTrainer(model=policy, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    return {**_summary(trainer, started), "pairs": len(rows)}
