"""The `openai` generation backend against our real OpenAI-compatible server on loopback (tiny model)."""

from __future__ import annotations

import pytest
from loopback import serve_in_thread

from taosr1_plugins.passn.generation import (
    GenerationError,
    SamplingParams,
    get_generation_backend,
)
from taosr1_plugins.passn.sample import PassnShardSettings, read_samples, sample_passn
from taosr1_plugins.core.prompts import build_messages
from taosr1_plugins.core.schemes import get_scheme


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    from taosr1_plugins.core.hf_chat import load_chat_model
    from taosr1_plugins.deploy.serving.openai_server import create_app

    app = create_app(load_chat_model(str(tiny_model_dir), device="cpu"), served_model_name="tiny")
    with serve_in_thread(app) as base:
        yield f"{base}/v1"


def test_openai_backend_samples_n_per_prompt(tmp_path, server, esci_records):
    backend = get_generation_backend("openai", model="tiny", base_url=server, concurrency=4, retries=0)
    records = esci_records[:3]
    settings = PassnShardSettings(backend="openai", n=3, temperature=1.0, max_new_tokens=10, seed=11, shard_size=2)
    summary = sample_passn("tiny", records, tmp_path / "s.jsonl", settings, backend=backend)
    rows = list(read_samples(tmp_path / "s.jsonl"))
    assert [r.id for r in rows] == [r.id for r in records] and all(len(r.responses) == 3 for r in rows)
    assert summary["samples"] == 9 and backend.chat.http_attempts == 9  # n=1 requests, one per sample
    # repeated requests carry distinct seeds, so a prompt's samples are distinct draws
    assert all(len({r.text for r in row.responses}) > 1 for row in rows)

    # same seed, same samples: the per-sample seeds make a rerun reproducible
    conversations = [build_messages(records[0], get_scheme("esci"))]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=11)
    first = backend.sample(conversations, params)
    assert backend.sample(conversations, params) == first
    assert [c.text for c in first[0]] == [r.text for r in rows[0].responses[:2]]


def test_openai_backend_use_n_refused_by_an_n1_server(server, esci_records):
    backend = get_generation_backend("openai", model="tiny", base_url=server, use_n=True, retries=0)
    conversations = [build_messages(esci_records[0], get_scheme("esci"))]
    with pytest.raises(GenerationError, match="generation endpoint refused the request.*only n=1"):
        backend.sample(conversations, SamplingParams(n=2, max_new_tokens=4, seed=1))
