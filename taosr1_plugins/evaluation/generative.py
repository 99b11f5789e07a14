"""Evaluate a generative relevance model: generate a response per pair, parse its label, score it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.evaluation.metrics import Metrics, compute_metrics
from taosr1_plugins.core.formats import ResponseFormat, parse_response
from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.core.prompts import PromptStyle, build_messages, prompt_style_of
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme


def evaluate_model(
    model: str | Path,
    records: Sequence[Record],
    scheme: LabelScheme,
    predictions_path: Path,
    *,
    fmt: ResponseFormat | str = ResponseFormat.THINK_ANSWER,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    style: PromptStyle | None = None,
    backend: str = "hf",
    options: dict[str, Any] | None = None,
) -> Metrics:
    """``style``: the prompt; None = the one ``model`` was trained with (``prompts.prompt_style_of``).
    ``backend``: hf (transformers, batches of ``batch_size``) or another generation backend (vllm), which
    decodes greedily, one completion per pair, with its ``options``."""
    style = style or prompt_style_of(model)
    conversations = [build_messages(record, scheme, fmt, style) for record in records]
    if backend == "hf":
        from taosr1_plugins.core.hf_chat import generate_chat, load_chat_model

        replies = generate_chat(load_chat_model(str(model)), conversations, max_new_tokens=max_new_tokens,
                                batch_size=batch_size)
    else:
        from taosr1_plugins.passn.generation import SamplingParams, get_generation_backend

        generator = get_generation_backend(backend, model=str(model), **(options or {}))
        greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
        replies = [row[0] for row in generator.sample(conversations, greedy)]
    parsed = [parse_response(reply.text, scheme, fmt) for reply in replies]
    write_jsonl(
        predictions_path,
        (
            {"id": r.id, "gold": r.label, "predicted": p.label, "format_ok": p.format_ok, "response": reply.text}
            for r, p, reply in zip(records, parsed, replies)
        ),
    )
    return compute_metrics(
        [r.label for r in records], [p.label for p in parsed], scheme, format_ok=[p.format_ok for p in parsed]
    )
