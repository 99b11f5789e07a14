"""The ``hf`` deployment adapter: label probabilities from a transformers causal LM (CPU or GPU).

One forward pass per pair over the answer-first prompt ending in ``<answer>``; rows are batched with
LEFT padding so every row's last position is its own answer position, and position ids are counted
from each row's first real token so a padded row sees the same positions as the row alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.core.options import validate_options
from taosr1_plugins.core.prompts import PromptStyle, prompt_style_of
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.deploy.scoring import clean_explanation, explanation_prompt, renormalise, scoring_prompt, verbalizer_token_ids


class HFScorerOptions(BaseModel):
    """What the ``hf`` adapter takes besides the model and scheme (the deploy stage passes device, batch size
    and explanation length from its own settings; ``deploy.options`` sets the rest)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:1, ...")
    dtype: str = Field("auto", description="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    batch_size: int = Field(8, ge=1, description="pairs per forward pass")
    max_explain_tokens: int = Field(128, ge=1)
    trust_remote_code: bool = False


class HFLabelScorer:
    def __init__(self, chat: Any, scheme: LabelScheme, *, batch_size: int = 8, max_explain_tokens: int = 128,
                 style: PromptStyle | None = None):
        self.chat, self.scheme, self.style = chat, scheme, style
        self.batch_size, self.max_explain_tokens = max(1, batch_size), max_explain_tokens
        self.token_ids = verbalizer_token_ids(chat.tokenizer, scheme)
        self.name = chat.name

    def encode(self, texts: Sequence[str]) -> dict:
        # The chat template already wrote BOS and role markers.
        enc = self.chat.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        mask = enc["attention_mask"]
        enc["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return {key: value.to(self.chat.device) for key, value in enc.items()}

    def label_logits(self, texts: Sequence[str], temperature: float | None = None) -> list[list[float]]:
        """Next-token logits of the verbalizer tokens at each prompt's end; with ``temperature``, their
        log-probabilities under the whole vocabulary's softmax at that temperature (what sampling draws from)."""
        import torch

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.encode(texts[start : start + self.batch_size])
            with torch.inference_mode():
                # logits_to_keep=1: only the last position's logits are needed (and computed).
                logits = self.chat.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            if temperature is not None:
                logits = torch.log_softmax(logits / temperature, dim=-1)
            rows.extend(logits[:, self.token_ids].tolist())
        return rows

    def sampling_probabilities(self, records: Sequence[Record], temperature: float) -> list[list[float]]:
        """Per record, the chance that a response sampled at ``temperature`` starts its answer with each level."""
        import math

        texts = [scoring_prompt(self.chat.tokenizer, record, self.scheme, self.style) for record in records]
        return [[math.exp(x) for x in row] for row in self.label_logits(texts, temperature)]

    def probabilities(self, records: Sequence[Record]) -> list[list[float]]:
        texts = [scoring_prompt(self.chat.tokenizer, record, self.scheme, self.style) for record in records]
        return [renormalise(row) for row in self.label_logits(texts)]

    def explain(self, records: Sequence[Record], labels: Sequence[str]) -> list[str]:
        import torch

        tokenizer = self.chat.tokenizer
        texts = [explanation_prompt(tokenizer, r, self.scheme, label, self.style) for r, label in zip(records, labels)]
        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            enc = tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(self.chat.device)
            with torch.inference_mode():
                generated = self.chat.model.generate(
                    **enc, max_new_tokens=self.max_explain_tokens, do_sample=False, temperature=None, top_p=None,
                    top_k=None, pad_token_id=tokenizer.pad_token_id,
                )
            for row in generated[:, enc["input_ids"].shape[1] :]:
                out.append(clean_explanation(tokenizer.decode(row, skip_special_tokens=True)))
        return out


def create_hf_scorer(model: str, scheme: LabelScheme, **options: Any) -> HFLabelScorer:
    """The ``hf`` adapter; ``options`` are :class:`HFScorerOptions` (OptionError naming a bad one)."""
    from taosr1_plugins.core.hf_chat import load_chat_model
    from taosr1_plugins.core.models import resolve_model

    opts = validate_options(create_hf_scorer, options, what="deployment adapter 'hf'")
    model = resolve_model(model)  # the folder whose prompt style is read below, not a built-in name
    chat = load_chat_model(model, device=opts.device, dtype=opts.dtype, trust_remote_code=opts.trust_remote_code)
    return HFLabelScorer(chat, scheme, batch_size=opts.batch_size, max_explain_tokens=opts.max_explain_tokens,
                         style=prompt_style_of(model))


create_hf_scorer.options_model = HFScorerOptions
create_hf_scorer.loads_checkpoint = True
