"""What both servers do before a request reaches the model: bounded bodies, bodies parsed without a 5xx,
and connections that must finish sending a request within a deadline.

A request that is bad in any way gets a 4xx here (413 too large, 400 not JSON, 422 text that is not
valid Unicode), so nothing malformed joins a batch shared with other clients' requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from taosr1_plugins.errors import UserError, field_path, first_problem, printable
from taosr1_plugins.core.jsonl import bad_text

REQUEST_TIMEOUT_S = 30.0  # headers and body of one request, from the first byte the server waits for
SHUTDOWN_GRACE_S = 5  # after SIGTERM, in-flight requests get this long before they are cancelled
# requests still waiting for the model this long before the grace ends are answered 503 (Shutdown), before
# uvicorn cancels them (a 500 "graceful shutdown exceeded" and a traceback in the log)
ANSWER_BEFORE_GRACE_ENDS_S = 1.5


class RequestError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, printable(message), retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class Shutdown:
    """When the server began to stop (SIGTERM, or --exit-after): a request that reaches the app after that
    gets 503 with Retry-After at once; one waiting for the model gets until shortly before the grace period
    ends to finish, then the same 503, so every client is answered and the server exits without cancelling."""

    def __init__(self) -> None:
        self.began: float | None = None

    def begin(self) -> None:
        if self.began is None:
            self.began = time.monotonic()

    @property
    def stopping(self) -> bool:
        return self.began is not None

    def too_late(self) -> bool:
        return self.began is not None and time.monotonic() - self.began >= SHUTDOWN_GRACE_S - ANSWER_BEFORE_GRACE_ENDS_S

    def refusal(self) -> RequestError:
        return RequestError(503, "the server is shutting down; retry the request", retry_after=SHUTDOWN_GRACE_S)


def check_worker(batcher, shutdown: Shutdown) -> None:
    """Before a request joins the queue: 503 when nothing would ever answer it (the batch thread died) or the
    server is stopping."""
    if not batcher.alive:
        raise RequestError(503, str(batcher.death()))
    if shutdown.stopping:
        raise shutdown.refusal()


def worker_health(batcher) -> tuple[int, dict[str, str]]:
    """(HTTP status, status fields) of a health endpoint: a dead batch thread answers nothing, so health says
    so with a 503 (a load balancer takes the server out), as every request does."""
    if batcher.alive:
        return 200, {"status": "ok"}
    return 503, {"status": "dead", "error": str(batcher.death())}


async def wait_for_answers(futures: list, shutdown: Shutdown) -> list:
    """The results of the batcher's ``futures``; a dead worker is a 503 (WorkerDied), and so is a server that has
    been stopping too long to wait for them (the futures are cancelled: the worker skips them)."""
    from taosr1_plugins.deploy.serving.batching import WorkerDied

    gathered = asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    try:
        while True:
            done, _ = await asyncio.wait([gathered], timeout=0.1)
            if done:
                return gathered.result()
            if shutdown.too_late():
                gathered.cancel()
                raise shutdown.refusal()
    except WorkerDied as exc:
        raise RequestError(503, str(exc)) from None


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will (SO_REUSEADDR), before the model loads: a port in use is the command
    line's problem, told in a second and not after minutes of loading."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise UserError(f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}") from None


async def read_body(request, limit: int) -> bytes:
    """The whole body, or RequestError(413) as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_body(body: bytes) -> Any:
    """JSON whose every string (keys too) is valid Unicode; RequestError 400/422 otherwise."""
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN / Infinity
        raise RequestError(400, f"invalid JSON: {exc}") from None
    found = bad_text(data)
    if found:
        where = field_path(found[0]) if found[0] else "body"
        raise RequestError(422, f"{where}: {found[1]}")
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def validation_message(exc) -> str:
    """The first pydantic error as 'field: problem', without echoing the input back (it may not serialise)."""
    return ": ".join(first_problem(exc))


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request is not fully received in time.

    uvicorn's keep-alive timer is reset by every byte, so a client sending a byte now and then held a
    connection (and its memory) forever. The deadline starts when the server begins waiting for a
    request and covers its headers and body; the app's own time to answer is not limited.
    """

    request_timeout = REQUEST_TIMEOUT_S

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_deadline()

    def connection_lost(self, exc) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.request_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        handle = getattr(self, "_deadline", None)
        if handle is not None:
            handle.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()


def make_server(app, *, host: str, port: int, log_level: str = "warning", request_timeout: float = REQUEST_TIMEOUT_S):
    """A uvicorn server with the request deadline and a bounded shutdown after SIGTERM, which first tells the
    app's :class:`Shutdown` (``app.state.shutdown``, when it has one) so it answers what is in flight."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            self.begin_shutdown()
            super().handle_exit(sig, frame)

        def begin_shutdown(self) -> None:
            shutdown = getattr(getattr(app, "state", None), "shutdown", None)
            if shutdown is not None:
                shutdown.begin()

    protocol = type("DeadlineProtocol", (DeadlineH11Protocol,), {"request_timeout": request_timeout})
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    return GracefulServer(config)


def run_server(server, exit_after: float | None = None) -> None:
    """Serve until interrupted, or for ``exit_after`` seconds (tests use it so no server outlives them)."""
    if exit_after is not None:
        def stop() -> None:
            server.begin_shutdown()
            server.should_exit = True

        timer = threading.Timer(exit_after, stop)
        timer.daemon = True
        timer.start()
    server.run()
