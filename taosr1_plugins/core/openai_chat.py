"""One retrying OpenAI-compatible chat client, shared by the `openai` teacher and the `openai` generation backend.

Transient failures - connection errors, timeouts, HTTP 408/409/429 and 5xx - are retried with
exponential backoff and jitter; any other HTTP error (bad request, auth, unknown model) fails at once,
since retrying cannot fix it. A request that still fails after every retry raises the caller's error
class, so a long job stops (and resumes on rerun) instead of silently dropping work while an endpoint is down.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RETRYABLE_STATUS = {408, 409, 429}


class EndpointError(RuntimeError):
    """The endpoint refused a request, or kept failing after every retry."""


class EndpointOptions(BaseModel):
    """Where the endpoint is and how hard to retry it (subclassed by each user's option model)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1; None means api.openai.com")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key")
    retries: int = Field(5, ge=0, description="extra tries per request after a transient failure")
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry; doubles each retry")
    max_backoff: float = Field(60.0, ge=0)
    timeout: float = Field(120.0, gt=0, description="seconds per HTTP request")


class RetryingChatClient:
    """``create(**chat_completion_kwargs)`` with our retry policy; thread-safe, counts every HTTP call."""

    def __init__(self, options: EndpointOptions, *, error: type[Exception] = EndpointError, what: str = "endpoint"):
        import openai

        self.options, self.error, self.what = options, error, what
        api_key = os.environ.get(options.api_key_env)
        if not api_key:
            if options.base_url is None:
                raise error(f"environment variable {options.api_key_env} (option api_key_env) is not set")
            api_key = "EMPTY"  # local servers (vLLM, ours) accept any key
        # The client's own retries are off: ours back off with jitter and count attempts.
        self.client = openai.OpenAI(base_url=options.base_url, api_key=api_key, max_retries=0, timeout=options.timeout)
        self._openai = openai
        self._lock = threading.Lock()
        self.http_attempts = 0  # every HTTP call made, for reports and tests
        self.transient_failures = 0

    def create(self, **kwargs: Any):
        opts = self.options
        last_error: Exception | None = None
        for attempt in range(opts.retries + 1):
            if attempt:
                time.sleep(self.delay(attempt))
            with self._lock:
                self.http_attempts += 1
            try:
                return self.client.chat.completions.create(**kwargs)
            except Exception as exc:
                if not self.is_transient(exc):
                    raise self.error(f"{self.what} refused the request: {exc}") from exc
                with self._lock:
                    self.transient_failures += 1
                last_error = exc
        raise self.error(
            f"{self.what} {opts.base_url or 'api.openai.com'} still failing after {opts.retries + 1} tries: "
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
