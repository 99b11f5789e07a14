"""A small OpenAI-compatible chat server over a local transformers model.

    taosr1 serve-chat --model DIR --port 8000 --host 127.0.0.1

Endpoints: POST /v1/chat/completions (messages, max_tokens, temperature, top_p, seed; n=1, no
streaming), GET /v1/models, GET /health (with request counters). It exists so the `openai` teacher can
be tested end to end against a real HTTP server on loopback, and so a local checkpoint can serve as a
teacher for tools that speak the OpenAI API. For throughput use vLLM or SGLang.

Concurrent requests are gathered into micro-batches (same sampling settings, up to --max-batch, waiting
at most --batch-wait seconds; see batching.py) and generated together with left padding on one worker thread, since
the model is not safe to call from several threads at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taosr1_plugins.deploy.serving.batching import MicroBatcher
from taosr1_plugins.deploy.serving.http_guard import (
    REQUEST_TIMEOUT_S, RequestError, Shutdown, check_port, check_worker, make_server, parse_json_body, read_body,
    run_server, validation_message, wait_for_answers, worker_health,
)

MAX_BODY_BYTES = 1 << 20
MAX_PROMPT_CHARS = 200_000  # all messages' text; a longer prompt is refused (413), not tokenised
# 10,000 one-character messages pass both limits above and held the one worker for 23 s in the chat template
MAX_MESSAGES = 256
DEFAULT_MAX_PROMPT_TOKENS = 8192  # for a model whose config names no context length
MAX_SEED = 2**63 - 1  # torch.manual_seed's range


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI "content parts": keep the text ones
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)  # unknown OpenAI parameters are ignored

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)  # OpenAI's default
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = 1
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stream: bool = False


@dataclass
class Job:
    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None

    @property
    def sampling_key(self) -> tuple:
        return (self.max_new_tokens, self.temperature, self.top_p, self.seed)


def generate_batch(chat, batch: list[Job]) -> list:
    """One generate call for jobs of equal sampling settings (the batcher groups them by ``sampling_key``)."""
    from taosr1_plugins.core.hf_chat import generate_chat

    first = batch[0]
    return generate_chat(
        chat,
        [job.messages for job in batch],
        max_new_tokens=first.max_new_tokens,
        temperature=first.temperature,
        top_p=first.top_p,
        batch_size=len(batch),
        seed=first.seed,
    )


class PromptTokens:
    """Counts a conversation's prompt tokens as the worker will (chat template, then tokenizer) with a copy of the
    tokenizer, off the event loop and off the worker's own tokenizer (a fast tokenizer is not safe to share
    between threads while one of them pads)."""

    def __init__(self, tokenizer):
        import copy

        self.tokenizer = copy.deepcopy(tokenizer)
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]]) -> int:
        from taosr1_plugins.core.hf_chat import render_chat

        with self.lock:
            text = render_chat(self.tokenizer, messages)
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def context_tokens(chat) -> int:
    """The model's context length, from its config; DEFAULT_MAX_PROMPT_TOKENS without one."""
    config = getattr(chat.model, "config", None)
    return int(getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_PROMPT_TOKENS)


def create_app(chat, *, served_model_name: str, max_tokens_limit: int = 4096, default_max_tokens: int = 512,
               max_batch: int = 8, batch_wait: float = 0.01, max_body_bytes: int = MAX_BODY_BYTES,
               max_prompt_chars: int = MAX_PROMPT_CHARS, max_messages: int = MAX_MESSAGES,
               max_prompt_tokens: int | None = None):
    """``max_prompt_tokens``: None = the model's context length."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="taosr1 OpenAI-compatible server")
    batcher = MicroBatcher(lambda jobs: generate_batch(chat, jobs), max_batch=max_batch, max_wait=batch_wait,
                           key=lambda job: job.sampling_key, name="generate")
    app.state.batcher = batcher
    app.state.shutdown = shutdown = Shutdown()
    count_tokens = PromptTokens(chat.tokenizer)
    max_prompt_tokens = max_prompt_tokens or context_tokens(chat)
    stats = {"chat_completions": 0, "errors": 0, "rejected": 0}  # errors: generation failed; rejected: 4xx
    created = int(time.time())

    def error(status: int, message: str, kind: str = "invalid_request_error",
              headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "code": status}},
                            headers=headers)

    @app.get("/health")
    def health() -> JSONResponse:
        code, status = worker_health(batcher)
        return JSONResponse(status_code=code, content={
            **status,
            "model": served_model_name, "batches": batcher.batches, **stats})

    @app.get("/v1/models")
    def models() -> dict:
        return {
            "object": "list",
            "data": [{"id": served_model_name, "object": "model", "created": created, "owned_by": "taosr1"}],
        }

    async def chat_completions(raw):  # a plain route: the body is bounded and checked before pydantic sees it
        try:
            request = ChatCompletionRequest.model_validate(parse_json_body(await read_body(raw, max_body_bytes)))
        except RequestError as exc:
            stats["rejected"] += 1
            return error(exc.status, exc.message)
        except ValidationError as exc:
            stats["rejected"] += 1
            return error(422, validation_message(exc))
        if len(request.messages) > max_messages:
            stats["rejected"] += 1
            return error(413, f"{len(request.messages)} messages; the limit is {max_messages}")
        messages = [{"role": m.role, "content": m.text()} for m in request.messages]
        prompt_chars = sum(len(m["content"]) for m in messages)
        if prompt_chars > max_prompt_chars:
            return error(413, f"the messages have {prompt_chars} characters; the limit is {max_prompt_chars}")
        if request.n != 1:
            return error(400, "only n=1 is supported")
        if request.stream:
            return error(400, "streaming is not supported")
        if request.model not in (None, served_model_name):
            return error(404, f"model {request.model!r} is not served here; GET /v1/models", "not_found_error")
        max_tokens = request.max_completion_tokens or request.max_tokens or default_max_tokens
        if max_tokens > max_tokens_limit:
            return error(400, f"max_tokens {max_tokens} is over this server's limit {max_tokens_limit}")
        try:
            prompt_tokens = await asyncio.to_thread(count_tokens, messages)
        except Exception as exc:  # a chat template that refuses these messages (e.g. roles out of order)
            stats["rejected"] += 1
            return error(400, f"the chat template refuses these messages: {type(exc).__name__}: {exc}")
        if prompt_tokens > max_prompt_tokens:
            stats["rejected"] += 1
            return error(413, f"the prompt has {prompt_tokens} tokens; the limit is {max_prompt_tokens}")
        job = Job(
            messages=messages,
            max_new_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
        )
        try:
            check_worker(batcher, shutdown)
            (reply,) = await wait_for_answers([batcher.submit(job)], shutdown)
        except RequestError as exc:  # 503: the worker died, or the server is stopping
            stats["errors"] += 1
            return error(exc.status, exc.message, "server_error", exc.headers)
        except Exception as exc:
            stats["errors"] += 1
            return error(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")
        stats["chat_completions"] += 1
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": served_model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        })

    app.router.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    return app


def serve(model: str, *, served_model_name: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          device: str = "auto", dtype: str = "auto", max_batch: int = 8, batch_wait: float = 0.01,
          max_tokens_limit: int = 4096, max_body_bytes: int = MAX_BODY_BYTES, max_prompt_chars: int = MAX_PROMPT_CHARS,
          max_messages: int = MAX_MESSAGES, max_prompt_tokens: int | None = None,
          request_timeout: float = REQUEST_TIMEOUT_S, exit_after: float | None = None, log_level: str = "warning") -> None:
    """Load the model and serve until interrupted (or for ``exit_after`` seconds); `taosr1 serve-chat`."""
    from taosr1_plugins.core.hf_chat import load_chat_model

    check_port(host, port)
    chat = load_chat_model(model, device=device, dtype=dtype)
    app = create_app(chat, served_model_name=served_model_name or model, max_tokens_limit=max_tokens_limit,
                     max_batch=max_batch, batch_wait=batch_wait, max_body_bytes=max_body_bytes,
                     max_prompt_chars=max_prompt_chars, max_messages=max_messages, max_prompt_tokens=max_prompt_tokens)
    server = make_server(app, host=host, port=port, log_level=log_level, request_timeout=request_timeout)
    print(f"serving {model} on http://{host}:{port}/v1", flush=True)
    run_server(server, exit_after)
