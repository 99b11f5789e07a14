"""The `openai` teacher against real servers on 127.0.0.1: our model server, and scripted flaky endpoints."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from loopback import chat_app, serve_in_thread, serve_model_subprocess

from taosr1_plugins.cot.generate import CotOptions, generate_cot, output_paths
from taosr1_plugins.cot.teachers import TeacherError, get_teacher

GOOD = "<think>\nmatches\n</think>\n<answer>E</answer>"


def teacher_for(base: str, **options):
    return get_teacher("openai", model="m", base_url=f"{base}/v1", api_key_env="TAOSR1_TEST_NO_KEY", **options)


def messages():
    return [{"role": "user", "content": "judge"}]


def test_retries_5xx_with_exponential_backoff():
    app = chat_app(lambda msgs, n: (500, "boom") if n <= 2 else (200, GOOD))
    with serve_in_thread(app) as base:
        teacher = teacher_for(base, retries=3)
        started = time.monotonic()
        assert teacher.complete(messages()) == GOOD
        elapsed = time.monotonic() - started
    assert len(app.state.received) == 3 and teacher.transient_failures == 2 and teacher.http_attempts == 3
    assert 1.1 <= elapsed < 5  # the SDK's backoff: 0.5 then 1 s, less up to 25% jitter


def test_gives_up_after_retries_and_fails_fast_on_4xx():
    app = chat_app(lambda msgs, n: (503, "overloaded"))
    with serve_in_thread(app) as base:
        with pytest.raises(TeacherError, match="after 3 tries"):
            teacher_for(base, retries=2).complete(messages())
        assert len(app.state.received) == 3
    app = chat_app(lambda msgs, n: (400, "bad request"))
    with serve_in_thread(app) as base:
        with pytest.raises(TeacherError, match="refused"):
            teacher_for(base, retries=5).complete(messages())
        assert len(app.state.received) == 1


def test_retries_timeouts_and_429():
    def respond(msgs, n):
        if n == 1:
            return 200, GOOD, 1.2  # slower than the client's timeout
        if n == 2:
            return 429, "slow down"
        return 200, GOOD

    app = chat_app(respond)
    with serve_in_thread(app) as base:
        teacher = teacher_for(base, retries=3, timeout=0.3)
        assert teacher.complete(messages()) == GOOD
        assert teacher.transient_failures == 2 and len(app.state.received) == 3


def test_retry_after_is_honoured():
    app = chat_app(lambda msgs, n: (429, "slow down", 0, {"Retry-After": "2"}) if n == 1 else (200, GOOD))
    with serve_in_thread(app) as base:
        teacher = teacher_for(base, retries=1)
        started = time.monotonic()
        assert teacher.complete(messages()) == GOOD
        elapsed = time.monotonic() - started
    assert len(app.state.received) == 2 and teacher.transient_failures == 1
    assert 1.9 <= elapsed < 5  # the server's 2 s, not the SDK's own 0.5 s backoff


def test_requests_run_concurrently_and_keep_order():
    def respond(msgs, n):
        return 200, msgs[-1]["content"].upper(), 0.3

    from taosr1_plugins.cot.teachers import TeacherRequest

    app = chat_app(respond)
    with serve_in_thread(app) as base:
        teacher = teacher_for(base, concurrency=8)
        requests = [TeacherRequest(record=None, messages=[{"role": "user", "content": f"r{i}"}]) for i in range(8)]
        started = time.monotonic()
        assert teacher.generate(requests) == [f"R{i}" for i in range(8)]
        assert time.monotonic() - started < 2.0  # 8 x 0.3 s one at a time would be 2.4 s


@pytest.fixture(scope="module")
def model_server(tiny_model_dir):
    with serve_model_subprocess(tiny_model_dir, name="tiny", lifetime=240) as base:
        yield base


def test_model_server_speaks_openai(model_server):
    models = httpx.get(f"{model_server}/v1/models").json()
    assert models["data"][0]["id"] == "tiny"
    reply = httpx.post(
        f"{model_server}/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0},
    ).json()
    assert reply["object"] == "chat.completion" and reply["usage"]["completion_tokens"] <= 4
    assert reply["choices"][0]["message"]["role"] == "assistant"
    bad = httpx.post(f"{model_server}/v1/chat/completions",
                     json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "n": 2})
    assert bad.status_code == 400 and "n=1" in bad.json()["error"]["message"]


def test_garbage_teacher_is_retried_then_dropped(model_server, esci_records, tmp_path):
    """The tiny random model writes garbage: every record is tried 1 + R times, then dropped."""
    records = esci_records[:6]
    before = httpx.get(f"{model_server}/health").json()["chat_completions"]
    teacher = get_teacher("openai", model="tiny", base_url=f"{model_server}/v1", api_key_env="TAOSR1_TEST_NO_KEY",
                          max_tokens=8, temperature=0.7, concurrency=4)
    out = tmp_path / "cot.jsonl"
    report = generate_cot(records, teacher, out, options=CotOptions(retries=2, batch_size=4), teacher_name="openai")
    after = httpx.get(f"{model_server}/health").json()["chat_completions"]

    assert (report.total, report.kept, report.dropped, report.teacher_requests) == (6, 0, 6, 18)
    assert after - before == 18 == teacher.http_attempts
    assert out.read_text() == ""
    ledger = [json.loads(line) for line in output_paths(out)["ledger"].read_text().splitlines()]
    assert sorted(row["id"] for row in ledger) == sorted(r.id for r in records)
    assert all(row["outcome"] == "dropped" and row["attempts"] == 3 for row in ledger)
