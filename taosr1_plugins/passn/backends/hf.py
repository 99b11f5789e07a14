"""The `hf` generation backend: a local transformers causal LM, N samples per prompt via num_return_sequences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.passn.generation import Completion, Messages, SamplingParams, check_shape


class HFBackendOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="checkpoint folder, built-in model (smollm2, tiny) or Hub id")
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:1, ...")
    dtype: str = Field("auto", description="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    batch_size: int = Field(4, ge=1, description="prompts per forward pass (each expanded to n rows)")
    trust_remote_code: bool = False


class HFBackend:
    options_model: ClassVar[type[BaseModel]] = HFBackendOptions
    loads_checkpoint: ClassVar[bool] = True

    def __init__(self, **options):
        from taosr1_plugins.core.hf_chat import load_chat_model

        self.options = opts = HFBackendOptions(**options)
        self.chat = load_chat_model(opts.model, device=opts.device, dtype=opts.dtype, trust_remote_code=opts.trust_remote_code)

    def sample(self, conversations: Sequence[Messages], params: SamplingParams) -> list[list[Completion]]:
        from taosr1_plugins.core.hf_chat import generate_chat

        # Greedy decoding gives the same text every time (and transformers refuses greedy with
        # several return sequences): decode once and repeat it.
        per_prompt = params.n if params.temperature > 0 else 1
        replies = generate_chat(
            self.chat,
            conversations,
            max_new_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            batch_size=self.options.batch_size,
            seed=params.seed,
            num_return_sequences=per_prompt,
        )
        results = []
        for i in range(len(conversations)):
            group = [Completion(r.text, r.finish_reason) for r in replies[i * per_prompt : (i + 1) * per_prompt]]
            results.append(group if per_prompt == params.n else group * params.n)
        return check_shape(results, len(conversations), params.n, "hf")
