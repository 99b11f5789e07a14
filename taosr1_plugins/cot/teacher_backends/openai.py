"""The `openai` teacher: any OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, our own server).

Requests run concurrently on threads (the OpenAI client is thread-safe); retries and backoff are the
openai SDK's (:class:`taosr1_plugins.core.openai_chat.ChatClient`). A request that still fails after every retry
raises TeacherError: the run stops, and a rerun resumes from the records already finished instead of
silently dropping records while an endpoint is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from pydantic import BaseModel, Field

from taosr1_plugins.core.openai_chat import EndpointOptions, ChatClient
from taosr1_plugins.cot.teachers import TeacherError, TeacherRequest


class OpenAITeacherOptions(EndpointOptions):
    model: str = Field(description="model name the endpoint serves")
    temperature: float = Field(0.7, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    concurrency: int = Field(8, ge=1)
    seed: int | None = None


class OpenAITeacher:
    options_model: ClassVar[type[BaseModel]] = OpenAITeacherOptions

    def __init__(self, **options):
        self.options = OpenAITeacherOptions(**options)
        self.chat = ChatClient(self.options, error=TeacherError, what="teacher endpoint")

    @property
    def http_attempts(self) -> int:
        return self.chat.http_attempts

    @property
    def transient_failures(self) -> int:
        return self.chat.transient_failures

    def generate(self, requests: Sequence[TeacherRequest]) -> list[str]:
        if not requests:
            return []
        workers = min(self.options.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-teacher") as pool:
            return list(pool.map(self.complete, [r.messages for r in requests]))

    def complete(self, messages: list[dict[str, str]]) -> str:
        opts = self.options
        extra = {"top_p": opts.top_p} if opts.top_p is not None else {}
        if opts.seed is not None:
            extra["seed"] = opts.seed
        response = self.chat.create(
            model=opts.model, messages=messages, temperature=opts.temperature, max_tokens=opts.max_tokens, n=1, **extra
        )
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""
