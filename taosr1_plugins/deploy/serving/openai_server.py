"""A small OpenAI-compatible chat server over a local transformers model.

    python -m taosr1_plugins.deploy.serving.openai_server --model DIR --port 8000 --host 127.0.0.1

Endpoints: POST /v1/chat/completions (messages, max_tokens, temperature, top_p, seed; n=1, no
streaming), GET /v1/models, GET /health (with request counters). It exists so the `openai` teacher can
be tested end to end against a real HTTP server on loopback, and so a local checkpoint can serve as a
teacher for tools that speak the OpenAI API. For throughput use vLLM or SGLang.

Concurrent requests are gathered into micro-batches (same sampling settings, up to --max-batch, waiting
at most --batch-wait seconds) and generated together with left padding on one worker thread, since
the model is not safe to call from several threads at once.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taosr1_plugins.deploy.serving.http_guard import REQUEST_TIMEOUT_S, RequestError, make_server, parse_json_body, read_body, validation_message

MAX_BODY_BYTES = 1 << 20
MAX_PROMPT_CHARS = 200_000  # all messages' text; a longer prompt is refused (413), not tokenised
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
    future: Future = field(default_factory=Future)

    @property
    def sampling_key(self) -> tuple:
        return (self.max_new_tokens, self.temperature, self.top_p, self.seed)


class MicroBatcher:
    """One worker thread owns the model; requests with equal sampling settings share a forward pass."""

    def __init__(self, chat, *, max_batch: int = 8, batch_wait: float = 0.01):
        self.chat, self.max_batch, self.batch_wait = chat, max_batch, batch_wait
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.batches = 0
        threading.Thread(target=self._work, name="generate", daemon=True).start()

    def submit(self, job: Job) -> Future:
        self.jobs.put(job)
        return job.future

    def _work(self) -> None:
        held: list[Job] = []  # jobs taken from the queue that did not fit the last batch
        while True:
            first = held.pop(0) if held else self.jobs.get()
            batch, deadline = [first], time.monotonic() + self.batch_wait
            while len(batch) < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                (batch if job.sampling_key == first.sampling_key else held).append(job)
            self._generate(batch)

    def _generate(self, batch: list[Job]) -> None:
        from taosr1_plugins.core.hf_chat import generate_chat

        first = batch[0]
        try:
            replies = generate_chat(
                self.chat,
                [job.messages for job in batch],
                max_new_tokens=first.max_new_tokens,
                temperature=first.temperature,
                top_p=first.top_p,
                batch_size=len(batch),
                seed=first.seed,
            )
        except Exception as exc:
            if len(batch) > 1:  # one request the model cannot take must not fail the others
                for job in batch:
                    self._generate([job])
                return
            if not first.future.done():
                first.future.set_exception(exc)
            return
        self.batches += 1
        for job, reply in zip(batch, replies):
            if not job.future.done():  # a client that went away cancelled its future
                job.future.set_result(reply)


def create_app(chat, *, served_model_name: str, max_tokens_limit: int = 4096, default_max_tokens: int = 512,
               max_batch: int = 8, batch_wait: float = 0.01, max_body_bytes: int = MAX_BODY_BYTES,
               max_prompt_chars: int = MAX_PROMPT_CHARS):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="taosr1 OpenAI-compatible server")
    batcher = MicroBatcher(chat, max_batch=max_batch, batch_wait=batch_wait)
    stats = {"chat_completions": 0, "errors": 0, "rejected": 0}  # errors: generation failed; rejected: 4xx
    created = int(time.time())

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "code": status}})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": served_model_name, "batches": batcher.batches, **stats}

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
        job = Job(
            messages=messages,
            max_new_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
        )
        try:
            reply = await asyncio.wrap_future(batcher.submit(job))
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="local checkpoint directory or Hub name")
    parser.add_argument("--served-model-name", default=None, help="model id clients send (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-wait", type=float, default=0.01, help="seconds to wait to fill a batch")
    parser.add_argument("--max-tokens-limit", type=int, default=4096)
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES)
    parser.add_argument("--max-prompt-chars", type=int, default=MAX_PROMPT_CHARS)
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT_S,
                        help="seconds a client has to send one request's headers and body")
    parser.add_argument("--exit-after", type=float, default=None,
                        help="stop by itself after this many seconds (tests use it so no server outlives them)")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from taosr1_plugins.core.hf_chat import load_chat_model

    args = parse_args(argv)
    chat = load_chat_model(args.model, device=args.device, dtype=args.dtype)
    app = create_app(
        chat,
        served_model_name=args.served_model_name or args.model,
        max_tokens_limit=args.max_tokens_limit,
        max_batch=args.max_batch,
        batch_wait=args.batch_wait,
        max_body_bytes=args.max_body_bytes,
        max_prompt_chars=args.max_prompt_chars,
    )
    server = make_server(app, host=args.host, port=args.port, log_level=args.log_level,
                         request_timeout=args.request_timeout)
    if args.exit_after is not None:
        timer = threading.Timer(args.exit_after, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
    print(f"serving {args.model} on http://{args.host}:{args.port}/v1", flush=True)
    server.run()


if __name__ == "__main__":
    main()
