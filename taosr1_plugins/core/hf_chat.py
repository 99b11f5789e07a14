"""Batched chat generation with a local transformers causal LM (used by the `hf` teacher and the server).

torch and transformers are imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Messages = Sequence[dict[str, str]]


@dataclass
class Reply:
    text: str
    finish_reason: str  # "stop" (end of turn) or "length" (max_new_tokens reached)
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ChatModel:
    model: Any
    tokenizer: Any
    device: str
    name: str


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def load_chat_model(
    model: str, *, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False
) -> ChatModel:
    from taosr1_plugins.core.models import resolve_model

    # a built-in name, folder or Hub id, checked before torch is even imported: a bad name fails in a second
    name, model = str(model), resolve_model(model)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    if dtype == "auto":
        # bf16 halves memory on GPUs; CPUs are fastest and safest in fp32.
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    # Decoder-only batches must be padded on the left so every row's continuation starts right after
    # its own prompt.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    lm.to(device)
    lm.eval()
    return ChatModel(model=lm, tokenizer=tokenizer, device=device, name=name)


def render_chat(tokenizer: Any, messages: Messages) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    # No chat template (a base model): a plain transcript still conditions it sensibly.
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nassistant:"


def generate_chat(
    chat: ChatModel,
    conversations: Sequence[Messages],
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int | None = None,
    num_return_sequences: int = 1,
) -> list[Reply]:
    """Generate ``num_return_sequences`` replies per conversation, grouped by conversation, in order.

    With several sequences each prompt is encoded once and expanded inside ``generate``; a batch of
    ``batch_size`` prompts then holds ``batch_size * num_return_sequences`` rows.
    """
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    tokenizer = chat.tokenizer
    stop_ids = _stop_token_ids(chat)
    replies: list[Reply] = []
    for start in range(0, len(conversations), max(1, batch_size)):
        texts = [render_chat(tokenizer, conv) for conv in conversations[start : start + batch_size]]
        # The chat template already wrote BOS and the role markers.
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(chat.device)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with torch.inference_mode():
            out = chat.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=stop_ids or None,
                num_return_sequences=num_return_sequences,
                **sampling,
            )
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        prompt_lengths = enc["attention_mask"].sum(dim=1).repeat_interleave(num_return_sequences).tolist()
        for row, prompt_tokens in zip(new_tokens.tolist(), prompt_lengths):
            # Rows that stopped early are padded after their stop token.
            stop_at = next((i for i, t in enumerate(row) if t in stop_ids), None)
            stopped = stop_at is not None
            if stopped:
                row = row[:stop_at]
            text = tokenizer.decode(row, skip_special_tokens=True)
            replies.append(Reply(text, "stop" if stopped else "length", int(prompt_tokens), len(row)))
    return replies


def _stop_token_ids(chat: ChatModel) -> list[int]:
    ids = chat.model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if chat.tokenizer.eos_token_id is not None and chat.tokenizer.eos_token_id not in ids:
        ids.append(chat.tokenizer.eos_token_id)
    return ids
