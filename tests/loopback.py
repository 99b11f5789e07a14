"""Test helpers: real HTTP servers on 127.0.0.1 (in a thread, or a subprocess), never a mock transport."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not up after {timeout}s")


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("loopback server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_module_subprocess(module: str, args: list[str], *, health_path: str, port: int | None = None,
                            lifetime: float = 240, startup_timeout: float = 90) -> Iterator[str]:
    """``python -m module --host 127.0.0.1 --port P --exit-after LIFETIME *args`` in its own process.

    Yields the base URL once ``health_path`` answers 200; the server also exits by itself after ``lifetime``.
    """
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--host", "127.0.0.1", "--port", str(port), "--exit-after", str(lifetime)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}{health_path}", timeout=startup_timeout, proc=proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serve_model_subprocess(model_dir: Path, *, name: str = "tiny", lifetime: float = 240) -> Iterator[str]:
    """Our OpenAI-compatible server over a local model, in its own process; it exits by itself after ``lifetime``."""
    with serve_module_subprocess(
        "taosr1_plugins.cli", ["serve-chat", "--model", str(model_dir), "--served-model-name", name],
        health_path="/v1/models", lifetime=lifetime,
    ) as base:
        yield base


def chat_app(respond: Callable[[list[dict], int], tuple], log: list | None = None):
    """A minimal OpenAI chat endpoint.

    ``respond(messages, request_number)`` returns ``(status, content)``, ``(status, content, delay_s)`` or
    ``(status, content, delay_s, headers)``; the delay is awaited, so slow answers do not block other requests.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()
    received = log if log is not None else []

    async def completions(request: Request):
        body = await request.json()
        with lock:
            received.append(body)
            number = len(received)
        status, content, *rest = respond(body["messages"], number)
        if rest and rest[0]:
            await asyncio.sleep(rest[0])
        headers = rest[1] if len(rest) > 1 else None
        if status != 200:
            return JSONResponse({"error": {"message": content, "type": "server_error"}}, status_code=status,
                                headers=headers)
        return JSONResponse({
            "id": f"chatcmpl-{number}", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "t"}]})

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]), Route("/v1/models", models)])
    app.state.received = received
    return app
