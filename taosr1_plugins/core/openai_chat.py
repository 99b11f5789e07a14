"""One OpenAI-compatible chat client, shared by the `openai` teacher and the `openai` generation backend.

Retries are the openai SDK's own (``max_retries``): connection errors, timeouts, HTTP 408/409/429 and
5xx are retried with exponential backoff and jitter, and a server's ``Retry-After`` is honoured; any
other HTTP error (bad request, auth, unknown model) fails at once, since retrying cannot fix it. A
request that still fails after every retry raises the caller's error class, so a long job stops (and
resumes on rerun) instead of silently dropping work while an endpoint is down.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.errors import UserError

# what the SDK retries besides connection errors and 5xx; a final error of these kinds means "gave up"
RETRYABLE_STATUS = {408, 409, 429}


class EndpointError(UserError, RuntimeError):
    """The endpoint refused a request, or kept failing after every retry."""


class EndpointOptions(BaseModel):
    """Where the endpoint is and how often to retry it (subclassed by each user's option model)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1; None means api.openai.com")
    api_key_env: str = Field("OPENAI_API_KEY", description="name of the environment variable holding the key")
    retries: int = Field(5, ge=0, description="extra tries per request after a transient failure (the SDK's max_retries)")
    timeout: float = Field(120.0, gt=0, description="seconds per HTTP request")


class ChatClient:
    """``create(**chat_completion_kwargs)``; thread-safe, counts every HTTP call the SDK makes."""

    def __init__(self, options: EndpointOptions, *, error: type[Exception] = EndpointError, what: str = "endpoint"):
        import openai

        self.options, self.error, self.what = options, error, what
        api_key = os.environ.get(options.api_key_env)
        if not api_key:
            if options.base_url is None:
                raise error(f"environment variable {options.api_key_env} (option api_key_env) is not set")
            api_key = "EMPTY"  # local servers (vLLM, ours) accept any key
        # the SDK's retries happen inside one create() call; a request hook sees each try, on the calling thread.
        # The SDK's own client class, so the HTTP library under it is whichever that SDK release uses
        http_client = openai.DefaultHttpxClient(timeout=options.timeout, event_hooks={"request": [self._count_try]})
        self.client = openai.OpenAI(base_url=options.base_url, api_key=api_key, max_retries=options.retries,
                                    timeout=options.timeout, http_client=http_client)
        self._openai = openai
        self._lock = threading.Lock()
        self._call = threading.local()
        self.http_attempts = 0  # every HTTP call made, for reports and tests
        self.transient_failures = 0

    def _count_try(self, request) -> None:
        self._call.tries = getattr(self._call, "tries", 0) + 1
        with self._lock:
            self.http_attempts += 1

    def create(self, **kwargs: Any):
        self._call.tries = 0
        try:
            response = self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            tries = self._call.tries
            if not self.is_transient(exc):
                self._failed_tries(tries - 1)
                raise self.error(f"{self.what} refused the request: {exc}") from exc
            self._failed_tries(tries)
            raise self.error(
                f"{self.what} {self.options.base_url or 'api.openai.com'} still failing after {tries} tries: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._failed_tries(self._call.tries - 1)
        return response

    def _failed_tries(self, count: int) -> None:
        with self._lock:
            self.transient_failures += max(0, count)

    def is_transient(self, exc: Exception) -> bool:
        openai = self._openai
        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code >= 500 or exc.status_code in RETRYABLE_STATUS
        return False
