"""The `openai` teacher: any OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, our own server).

Requests run concurrently on threads (the OpenAI client is thread-safe). Transient failures -
connection errors, timeouts, HTTP 408/409/429 and 5xx - are retried with exponential backoff and
jitter; any other HTTP error (bad request, auth, unknown model) fails at once, since retrying cannot
fix it. A request that still fails after every retry raises TeacherError: the run stops, and a rerun
resumes from the records already finished instead of silently dropping records while an endpoint is down.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.teachers import TeacherError, TeacherRequest

RETRYABLE_STATUS = {408, 409, 429}


class OpenAITeacherOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model name the endpoint serves")
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1; None means api.openai.com")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key")
    temperature: float = Field(0.7, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    concurrency: int = Field(8, ge=1)
    retries: int = Field(5, ge=0, description="extra tries per request after a transient failure")
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry; doubles each retry")
    max_backoff: float = Field(60.0, ge=0)
    timeout: float = Field(120.0, gt=0, description="seconds per HTTP request")
    seed: int | None = None


class OpenAITeacher:
    def __init__(self, **options):
        import openai

        self.options = opts = OpenAITeacherOptions(**options)
        api_key = os.environ.get(opts.api_key_env)
        if not api_key:
            if opts.base_url is None:
                raise TeacherError(f"environment variable {opts.api_key_env} (option api_key_env) is not set")
            api_key = "EMPTY"  # local servers (vLLM, ours) accept any key
        # The client's own retries are off: ours log, back off with jitter, and count attempts.
        self.client = openai.OpenAI(base_url=opts.base_url, api_key=api_key, max_retries=0, timeout=opts.timeout)
        self._openai = openai
        self._lock = threading.Lock()
        self.http_attempts = 0  # every HTTP call made, for reports and tests
        self.transient_failures = 0

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
        last_error: Exception | None = None
        for attempt in range(opts.retries + 1):
            if attempt:
                time.sleep(self.delay(attempt))
            with self._lock:
                self.http_attempts += 1
            try:
                response = self.client.chat.completions.create(
                    model=opts.model,
                    messages=messages,
                    temperature=opts.temperature,
                    max_tokens=opts.max_tokens,
                    n=1,
                    **extra,
                )
            except Exception as exc:
                if not self.is_transient(exc):
                    raise TeacherError(f"teacher endpoint refused the request: {exc}") from exc
                with self._lock:
                    self.transient_failures += 1
                last_error = exc
                continue
            if not response.choices:
                return ""
            return response.choices[0].message.content or ""
        raise TeacherError(
            f"teacher endpoint {opts.base_url or 'api.openai.com'} still failing after {opts.retries + 1} tries: "
            f"{type(last_error).__name__}: {last_error}"
        )

    def delay(self, attempt: int) -> float:
        """Exponential backoff with up to 25% jitter, so concurrent workers do not retry in lockstep."""
        base = min(self.options.max_backoff, self.options.backoff * 2 ** (attempt - 1))
        return base * (1 + 0.25 * random.random())

    def is_transient(self, exc: Exception) -> bool:
        openai = self._openai
        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code >= 500 or exc.status_code in RETRYABLE_STATUS
        return False
