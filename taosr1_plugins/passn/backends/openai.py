"""The `openai` generation backend: any OpenAI-compatible chat endpoint (vLLM, SGLang, OpenAI, our server).

N samples per prompt either in one request with ``n=N`` (``use_n=true``; vLLM and OpenAI support it)
or as N requests with ``n=1`` (the default, since many compatible servers, ours included, only do n=1).
Repeated requests get distinct seeds (seed + sample index): N requests with one seed would return N
copies of the same sample. Requests run concurrently; retries are the openai SDK's (core/openai_chat.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from pydantic import BaseModel, Field

from taosr1_plugins.passn.generation import (
    Completion,
    GenerationError,
    Messages,
    SamplingParams,
    check_shape,
)
from taosr1_plugins.core.openai_chat import EndpointOptions, ChatClient


class OpenAIBackendOptions(EndpointOptions):
    model: str = Field(description="model name the endpoint serves")
    use_n: bool = Field(False, description="ask for all N samples in one request (n=N)")
    concurrency: int = Field(8, ge=1, description="requests in flight")


class OpenAIBackend:
    options_model: ClassVar[type[BaseModel]] = OpenAIBackendOptions
    loads_checkpoint: ClassVar[bool] = False  # names a model the endpoint serves

    def __init__(self, **options):
        self.options = OpenAIBackendOptions(**options)
        self.chat = ChatClient(self.options, error=GenerationError, what="generation endpoint")

    def sample(self, conversations: Sequence[Messages], params: SamplingParams) -> list[list[Completion]]:
        if not conversations:
            return []
        # One job per request: (prompt index, n of this request, seed of this request)
        if self.options.use_n:
            jobs = [(i, params.n, _seed(params, i, 0, params.n)) for i in range(len(conversations))]
        else:
            jobs = [(i, 1, _seed(params, i, j, params.n)) for i in range(len(conversations)) for j in range(params.n)]

        def run(job):
            index, n, seed = job
            return index, self.request(conversations[index], params, n, seed)

        results: list[list[Completion]] = [[] for _ in conversations]
        with ThreadPoolExecutor(max_workers=min(self.options.concurrency, len(jobs)), thread_name_prefix="openai-sample") as pool:
            for index, completions in pool.map(run, jobs):  # map keeps job order, so samples stay in order
                results[index].extend(completions)
        return check_shape(results, len(conversations), params.n, "openai")

    def request(self, messages: Messages, params: SamplingParams, n: int, seed: int | None) -> list[Completion]:
        extra = {"seed": seed} if seed is not None else {}
        response = self.chat.create(
            model=self.options.model,
            messages=list(messages),
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            n=n,
            **extra,
        )
        choices = sorted(response.choices or [], key=lambda c: c.index)
        if len(choices) != n:
            raise GenerationError(f"endpoint returned {len(choices)} choices for n={n} (set use_n=false?)")
        return [Completion(c.message.content or "", c.finish_reason or "stop") for c in choices]


def _seed(params: SamplingParams, prompt: int, sample: int, n: int) -> int | None:
    """Distinct, reproducible seeds per prompt and sample within one call."""
    return None if params.seed is None else params.seed + prompt * n + sample
