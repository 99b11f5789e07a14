"""Both servers on loopback with the tiny model under hostile and careless clients: a 4xx that names the
problem, never a 5xx; a bad request never fails another; slow clients are cut off; SIGTERM stops it.

Client counts and every wait are bounded, so a regression fails instead of hanging."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_helpers import run_main
from loopback import free_port, wait_until_up
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.serving.http_guard import SHUTDOWN_GRACE_S, make_server
from taosr1_plugins.deploy.serving.score_server import Limits
from taosr1_plugins.deploy.serving.score_server import create_app as score_app

ESCI = get_scheme("esci")
REQUEST_TIMEOUT = 1.0
PROMPT_TOKENS = 300  # the chat server's prompt token limit here


@contextlib.contextmanager
def serve(app):
    """The app behind the servers' own uvicorn setup (request deadline included), on a free loopback port."""
    port = free_port()
    server = make_server(app, host="127.0.0.1", port=port, request_timeout=REQUEST_TIMEOUT)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def score_server(tiny_model_dir):
    from taosr1_plugins.deploy.scoring import ScoreSettings, load_scorer

    scorer = load_scorer(tiny_model_dir, ESCI, ScoreSettings(device="cpu", batch_size=16))
    app = score_app(scorer, max_batch=16, max_wait=0.02, limits=Limits(max_pairs=8, max_chars=500, max_pending=12))
    with serve(app) as base:
        yield base


@pytest.fixture(scope="module")
def chat_server(tiny_model_dir):
    from taosr1_plugins.core.hf_chat import load_chat_model
    from taosr1_plugins.deploy.serving.openai_server import create_app

    app = create_app(load_chat_model(str(tiny_model_dir), device="cpu"), served_model_name="tiny",
                     max_body_bytes=100_000, max_prompt_chars=20_000, max_prompt_tokens=PROMPT_TOKENS)
    with serve(app) as base:
        yield base


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)


GOOD_PAIR = {"query": "iphone case", "item": {"title": "Clear case", "attributes": {"colour": "clear"}}}
SURROGATE = "\\ud800"  # as it arrives: a JSON escape of a lone surrogate

BAD_SCORE_BODIES = {
    "surrogate in query": (f'{{"pairs": [{{"query": "a{SURROGATE}", "item": "x"}}]}}', 422, "pairs.0.query"),
    "surrogate in id": (f'{{"pairs": [{{"id": "{SURROGATE}", "query": "q", "item": "x"}}]}}', 422, "pairs.0.id"),
    "surrogate in title": (f'{{"pairs": [{{"query": "q", "item": {{"title": "{SURROGATE}"}}}}]}}', 422, "title"),
    "surrogate in attributes key": (
        f'{{"pairs": [{{"query": "q", "item": {{"title": "t", "attributes": {{"{SURROGATE}": "v"}}}}}}]}}',
        422,
        "attributes",
    ),
    "deeply nested": ('{"pairs": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "nested too deeply"),
    "NaN constant": ('{"pairs": [{"query": "q", "item": "x", "id": NaN}]}', 400, "NaN"),
    "non-UTF-8 bytes": (b'{"pairs": [{"query": "\xff", "item": "x"}]}', 400, "invalid JSON"),
    "whitespace query": ('{"pairs": [{"query": " \\t ", "item": "x"}]}', 422, "pairs[0].query"),
    "whitespace id": ('{"pairs": [{"id": "  ", "query": "q", "item": "x"}]}', 422, "pairs[0].id"),
    "whitespace title": ('{"pairs": [{"query": "q", "item": {"title": "  "}}]}', 422, "pairs[0].item"),
    "attributes not text": ('{"pairs": [{"query": "q", "item": {"title": "t", "attributes": {"a": [1]}}}]}', 422, "attributes"),
    "query over max_chars": (json.dumps({"pairs": [{"query": "q" * 501, "item": "x"}]}), 413, "limit is 500"),
    "more pairs than max_pairs": (json.dumps({"pairs": [GOOD_PAIR] * 13}), 413, "limit is 8"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCORE_BODIES))
def test_score_server_answers_bad_bodies_with_4xx(score_server, case):
    body, status, message = BAD_SCORE_BODIES[case]
    response = post(f"{score_server}/v1/score", body if isinstance(body, bytes) else body.encode())
    assert response.status_code == status and message in response.json()["error"]["message"], response.text


def test_a_full_queue_answers_429_and_the_server_keeps_serving(score_server):
    # 8 pairs per request, 12 pending at most: concurrent requests overflow the queue while one is scored
    async def burst():
        async with httpx.AsyncClient(timeout=60) as client:
            body = json.dumps({"pairs": [GOOD_PAIR] * 8})
            return await asyncio.gather(*(client.post(f"{score_server}/v1/score", content=body) for _ in range(12)))

    statuses = [r.status_code for r in asyncio.run(burst())]
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses, statuses
    assert post(f"{score_server}/v1/score", json.dumps({"pairs": [GOOD_PAIR]}).encode()).status_code == 200


def test_bad_pairs_never_fail_other_clients_sharing_a_batch(score_server):
    bad = BAD_SCORE_BODIES["surrogate in attributes key"][0].encode()
    good = json.dumps({"pairs": [GOOD_PAIR]}).encode()

    async def mixed():
        async with httpx.AsyncClient(timeout=60) as client:
            bodies = [bad if i % 3 == 0 else good for i in range(12)]  # 8 good pairs: under max_pending
            responses = await asyncio.gather(*(client.post(f"{score_server}/v1/score", content=b) for b in bodies))
            return list(zip(bodies, responses))

    for body, response in asyncio.run(mixed()):
        assert response.status_code == (422 if body is bad else 200), response.text
    health = httpx.get(f"{score_server}/healthz", timeout=10).json()
    assert health["failed"] == 0


def _trickle(base: str, first: bytes, drip: bytes, seconds: float) -> float | None:
    """Send ``first``, then one byte of ``drip`` every 0.1 s; when the server closed the connection, else None."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(first)
        for byte in drip * 1000:
            if time.monotonic() - started > seconds:
                return None
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.1)
                if sock.recv(1024) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    return None


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_slow_clients_are_disconnected(score_server, phase):
    if phase == "headers":
        first, drip = b"POST /v1/score HTTP/1.1\r\nHost: x\r\n", b"X-Slow: a\r\n"
    else:
        first, drip = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", b" "
    closed_after = _trickle(score_server, first, drip, seconds=15 * REQUEST_TIMEOUT)
    assert closed_after is not None, "a client sending a byte now and then kept its connection"
    assert httpx.get(f"{score_server}/healthz", timeout=10).status_code == 200


# --- the OpenAI-compatible server -----------------------------------------------------------------


def chat_body(**fields) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}


BAD_CHAT_BODIES = {
    "temperature NaN literal": (json.dumps(chat_body()).replace('"max_tokens"', '"temperature": NaN, "max_tokens"'),
                                400, "NaN"),
    "temperature 'nan'": (json.dumps(chat_body(temperature="nan")), 422, "temperature"),
    "non-string text part": (
        json.dumps(chat_body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}])),
        422, "messages.0.content",
    ),
    "seed 2**70": (json.dumps(chat_body(seed=2**70)), 422, "seed"),
    "negative seed": (json.dumps(chat_body(seed=-1)), 422, "seed"),
    "body over the limit": (json.dumps(chat_body(messages=[{"role": "user", "content": "x" * 5_000_000}])),
                            413, "bytes"),
    "prompt over the limit": (json.dumps(chat_body(messages=[{"role": "user", "content": "x" * 30_000}])),
                              413, "characters"),
    "surrogate in content": (json.dumps(chat_body()).replace('"hi"', f'"hi{SURROGATE}"'), 422, "messages.0.content"),
    "deeply nested": ('{"messages": ' + "[" * 40_000 + "]" * 40_000 + "}", 400, "nested too deeply"),
    "no body": ("", 400, "invalid JSON"),
    "messages missing": (json.dumps({"model": "tiny"}), 422, "messages"),
    # under both size limits, yet minutes of chat template for the one worker: bounded by count and by tokens
    "2,000 one-character messages": (json.dumps(chat_body(messages=[{"role": "user", "content": "x"}] * 2_000)),
                                     413, "2000 messages; the limit is 256"),
    "prompt over the token limit": (json.dumps(chat_body(messages=[{"role": "user", "content": "red shoe " * 400}])),
                                    413, f"tokens; the limit is {PROMPT_TOKENS}"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHAT_BODIES))
def test_chat_server_answers_bad_bodies_with_4xx(chat_server, case):
    body, status, message = BAD_CHAT_BODIES[case]
    response = post(f"{chat_server}/v1/chat/completions", body.encode())
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"], response.text


def test_chat_server_serves_good_requests_among_bad_ones(chat_server):
    bodies = [json.dumps(chat_body(seed=i)).encode() for i in range(6)]
    bodies += [BAD_CHAT_BODIES[case][0].encode() for case in ("seed 2**70", "surrogate in content", "no body")]

    async def mixed():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(client.post(f"{chat_server}/v1/chat/completions", content=b) for b in bodies))

    statuses = [r.status_code for r in asyncio.run(mixed())]
    assert statuses[:6] == [200] * 6 and all(400 <= s < 500 for s in statuses[6:]), statuses
    health = httpx.get(f"{chat_server}/health", timeout=10).json()
    assert health["errors"] == 0 and health["rejected"] >= 3


def test_chat_server_answers_in_flight_requests_and_exits_cleanly_on_sigterm(tiny_model_dir):
    """SIGTERM while a long generation runs: the client gets a 503 with Retry-After (not uvicorn's 500 "graceful
    shutdown exceeded"), the server exits within seconds and logs no traceback."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "taosr1_plugins.cli", "serve-chat", "--model", str(tiny_model_dir),
         "--served-model-name", "tiny", "--device", "cpu", "--max-tokens-limit", "100000",
         "--host", "127.0.0.1", "--port", str(port), "--exit-after", "300", "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response | Exception] = []
    try:
        wait_until_up(f"{base}/v1/models", timeout=90, proc=proc)

        def long_request():
            try:
                answers.append(httpx.post(f"{base}/v1/chat/completions", json=chat_body(max_tokens=100_000), timeout=120))
            except httpx.HTTPError as exc:
                answers.append(exc)

        client = threading.Thread(target=long_request, daemon=True)
        client.start()
        time.sleep(2.0)  # the long generation is under way
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # the bound: SHUTDOWN_GRACE_S plus start-up slack, far below the generation
        client.join(timeout=30)
        log = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGTERM), log  # uvicorn re-raises the signal it handled
    assert "Traceback" not in log and "graceful shutdown exceeded" not in log, log
    (answer,) = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 503 and answer.headers["retry-after"] == str(SHUTDOWN_GRACE_S), answer.text
    assert "shutting down" in answer.json()["error"]["message"]


# --- server options and a dead batch thread -------------------------------------------------------


@pytest.mark.parametrize(("command", "option", "value"), [
    ("serve", "--max-wait", "inf"), ("serve", "--max-wait", "nan"), ("serve-chat", "--batch-wait", "inf"),
    ("serve", "--exit-after", "-5"), ("serve-chat", "--exit-after", "-5"), ("serve", "--request-timeout", "inf"),
])
def test_server_options_out_of_bounds_are_refused_at_once(tiny_model_dir, capsys, monkeypatch, command, option, value):
    port = str(free_port())
    bounded = [] if option == "--exit-after" else ["--exit-after", "20"]  # so a regression ends instead of serving
    code, err = run_main(capsys, monkeypatch, command, "--model", tiny_model_dir, "--device", "cpu", "--host", "127.0.0.1",
                         "--port", port, *bounded, option, value)
    assert code == 2 and option in err, err


@pytest.mark.parametrize("command", ["serve", "serve-chat"])
def test_a_port_in_use_is_refused_before_the_model_loads(tiny_model_dir, capsys, monkeypatch, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = run_main(capsys, monkeypatch, command, "--model", tiny_model_dir, "--device", "cpu",
                             "--host", "127.0.0.1", "--port", str(port), "--exit-after", "20")
    out = capsys.readouterr().out
    assert code == 2 and f"--port {port}: cannot listen there" in err, err
    assert "Traceback" not in err and "serving" not in out and "scoring with" not in out


class DiesOnPoison:
    """The real scorer, except that a pair with query 'poison' ends the thread that calls it (SystemExit, which
    no ``except Exception`` catches): the batch thread dying, as the OverflowError of --max-wait inf made it."""

    def __init__(self, scorer):
        self.scorer, self.scheme = scorer, scorer.scheme

    def probabilities(self, records):
        if any(record.query == "poison" for record in records):
            raise SystemExit("the batch thread ends here")
        return self.scorer.probabilities(records)


def test_a_dead_batch_thread_is_reported_by_health_and_requests_fail_fast(tiny_model_dir):
    from taosr1_plugins.deploy.scoring import ScoreSettings, load_scorer

    scorer = load_scorer(tiny_model_dir, ESCI, ScoreSettings(device="cpu", batch_size=4))
    with serve(score_app(DiesOnPoison(scorer), max_batch=4, max_wait=0.01)) as base:
        good = json.dumps({"pairs": [GOOD_PAIR]}).encode()
        assert post(f"{base}/v1/score", good).status_code == 200
        assert httpx.get(f"{base}/healthz", timeout=10).json()["status"] == "ok"
        # every wait below is bounded: a request that hangs fails the test by its timeout
        poisoned = httpx.post(f"{base}/v1/score", json={"pairs": [{**GOOD_PAIR, "query": "poison"}]}, timeout=30)
        assert poisoned.status_code == 503 and "the batch worker died (SystemExit" in poisoned.text
        for _ in range(3):
            later = httpx.post(f"{base}/v1/score", content=good, headers={"content-type": "application/json"}, timeout=10)
            assert later.status_code == 503 and "restart the server" in later.text
        health = httpx.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "dead"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
pair_like = st.fixed_dictionaries(
    {"query": json_values | st.text(max_size=30)},
    optional={"item": json_values | st.text(max_size=30) | st.fixed_dictionaries({"title": json_values}, optional={"attributes": json_values}),
              "id": json_values},
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, st.fixed_dictionaries({"pairs": st.lists(pair_like, max_size=3)})))
def test_generated_score_bodies_never_get_a_5xx(score_server, body):
    response = post(f"{score_server}/v1/score", json.dumps(body).encode())
    assert response.status_code < 500, response.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.dictionaries(st.sampled_from(["temperature", "top_p", "seed", "max_tokens", "n", "stream", "model",
                                              "messages", "max_completion_tokens"]), json_values, max_size=3))
def test_generated_chat_bodies_never_get_a_5xx(chat_server, extra):
    response = post(f"{chat_server}/v1/chat/completions", json.dumps({**chat_body(max_tokens=1), **extra}).encode())
    assert response.status_code < 500, response.text
