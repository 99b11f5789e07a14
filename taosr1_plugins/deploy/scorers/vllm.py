"""The ``vllm`` deployment adapter (GPU): label probabilities from vLLM's logprobs of the label tokens.

Each pair is one request for a single token after the answer-first prompt, restricted to the verbalizer
tokens (``allowed_token_ids``) with ``logprobs`` = number of levels. The engine is created with
``logprobs_mode="processed_logprobs"`` so the returned logprobs are taken after that restriction: the
top-L entries are then exactly the L verbalizers, however unlikely they are under the full vocabulary
(raw logprobs would only cover the full vocabulary's top-k and could miss a level). That option exists
from vLLM 0.10.2 on, hence the version check. Renormalising over the verbalizers gives p(level).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from taosr1_plugins.core.prompts import PromptStyle, prompt_style_of
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.deploy.scoring import clean_explanation, explanation_prompt, renormalise, scoring_prompt, verbalizer_token_ids

MIN_VLLM = (0, 10, 2)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise RuntimeError("the vllm scoring backend needs vLLM on a GPU machine: pip install 'vllm>=0.10.2'") from exc
    if _version_tuple(vllm.__version__) < MIN_VLLM:
        raise RuntimeError(
            f"vLLM {vllm.__version__} is too old for the vllm scoring backend: it needs >= "
            f"{'.'.join(map(str, MIN_VLLM))} (logprobs_mode='processed_logprobs')"
        )
    return vllm


class VLLMLabelScorer:
    def __init__(self, llm: Any, tokenizer: Any, scheme: LabelScheme, *, max_explain_tokens: int = 128,
                 style: PromptStyle | None = None):
        self.llm, self.tokenizer, self.scheme, self.style = llm, tokenizer, scheme, style
        self.token_ids = verbalizer_token_ids(tokenizer, scheme)
        self.max_explain_tokens = max_explain_tokens

    def _prompts(self, texts: Sequence[str]) -> list[dict]:
        # Token ids, not text: the chat template already wrote BOS, and vLLM would add another.
        return [{"prompt_token_ids": self.tokenizer.encode(t, add_special_tokens=False)} for t in texts]

    def probabilities(self, records: Sequence[Record]) -> list[list[float]]:
        vllm = import_vllm()
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=len(self.token_ids),
                                     allowed_token_ids=list(self.token_ids))
        texts = [scoring_prompt(self.tokenizer, record, self.scheme, self.style) for record in records]
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=False)
        rows = []
        for output in outputs:
            first = output.outputs[0].logprobs[0]  # {token id: Logprob} at the answer position
            logits = [first[t].logprob if t in first else -math.inf for t in self.token_ids]
            rows.append(renormalise(logits))
        return rows

    def explain(self, records: Sequence[Record], labels: Sequence[str]) -> list[str]:
        vllm = import_vllm()
        params = vllm.SamplingParams(max_tokens=self.max_explain_tokens, temperature=0.0, stop=["</think>"])
        texts = [explanation_prompt(self.tokenizer, r, self.scheme, label, self.style) for r, label in zip(records, labels)]
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=False)
        return [clean_explanation(output.outputs[0].text) for output in outputs]


def create_vllm_scorer(model: str, scheme: LabelScheme, *, device: str = "auto", dtype: str = "auto",
                       batch_size: int = 8, max_explain_tokens: int = 128, gpu_memory_utilization: float = 0.85,
                       tensor_parallel_size: int = 1, max_model_len: int | None = None,
                       trust_remote_code: bool = False, **unused: Any) -> VLLMLabelScorer:
    """``device`` and ``batch_size`` are accepted for a uniform CLI; vLLM schedules its own batches on GPU."""
    if unused:
        raise TypeError(f"vllm scorer: unknown options {sorted(unused)}")
    if device not in ("auto", "cuda"):
        raise RuntimeError(f"the vllm scoring backend runs on GPU only (device={device!r}); use --backend hf")
    vllm = import_vllm()
    llm = vllm.LLM(model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                   tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                   trust_remote_code=trust_remote_code, logprobs_mode="processed_logprobs",
                   max_logprobs=max(20, len(scheme.levels)))
    return VLLMLabelScorer(llm, llm.get_tokenizer(), scheme, max_explain_tokens=max_explain_tokens,
                           style=prompt_style_of(model))
