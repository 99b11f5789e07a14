"""The `hf` teacher: a local transformers causal LM, batched with left padding, on CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.cot.teachers import TeacherRequest


class HFTeacherOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="checkpoint folder, built-in model (smollm2, tiny) or Hub id")
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:1, ...")
    dtype: str = Field("auto", description="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    max_new_tokens: int = Field(768, ge=1)
    temperature: float = Field(0.7, ge=0, description="0 means greedy decoding")
    top_p: float = Field(1.0, gt=0, le=1)
    batch_size: int = Field(8, ge=1, description="prompts per forward pass")
    seed: int | None = None
    trust_remote_code: bool = False


class HFTeacher:
    options_model: ClassVar[type[BaseModel]] = HFTeacherOptions
    loads_checkpoint: ClassVar[bool] = True

    def __init__(self, **options):
        from taosr1_plugins.core.hf_chat import load_chat_model

        self.options = opts = HFTeacherOptions(**options)
        self.chat = load_chat_model(
            opts.model, device=opts.device, dtype=opts.dtype, trust_remote_code=opts.trust_remote_code
        )

    def generate(self, requests: Sequence[TeacherRequest]) -> list[str]:
        from taosr1_plugins.core.hf_chat import generate_chat

        opts = self.options
        replies = generate_chat(
            self.chat,
            [r.messages for r in requests],
            max_new_tokens=opts.max_new_tokens,
            temperature=opts.temperature,
            top_p=opts.top_p,
            batch_size=opts.batch_size,
            seed=opts.seed,
        )
        return [reply.text for reply in replies]
