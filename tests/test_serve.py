"""The scoring server as deployed: a real process on loopback with the tiny model and a CumPT file."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from loopback import serve_module_subprocess
from taosr1_plugins.deploy.cumpt import expected_score
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import get_scheme

ESCI = get_scheme("esci")
MAX_PAIRS = 8
MAX_BODY = 20_000


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    cumpt = tmp_path_factory.mktemp("serve") / "cumpt.json"
    cumpt.write_text(json.dumps({"scheme": "esci", "levels": ESCI.keys, "thresholds": {"E": 0.3, "S": 0.5, "C": 0.8}}))
    args = ["--model", str(tiny_model_dir), "--cumpt", str(cumpt), "--device", "cpu", "--max-batch", "16",
            "--max-wait", "0.02", "--max-pairs", str(MAX_PAIRS), "--max-body-bytes", str(MAX_BODY)]
    with serve_module_subprocess("taosr1_plugins.cli", ["serve", *args], health_path="/healthz",
                                 lifetime=180) as base:
        yield base


def test_scores_pairs(server, tiny_model_dir):
    pairs = [{"query": "red running shoes", "item": "Nike Air Zoom running shoe, red", "id": "a"},
             {"query": "usb c cable", "item": {"title": "Anker USB-C cable", "brand": "Anker"}}]
    response = httpx.post(f"{server}/v1/score", json={"pairs": pairs}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scheme"] == "esci" and body["tiering"] == "cumpt"
    results = body["results"]
    assert [r["id"] for r in results] == ["a", "pair-1"]
    for result in results:
        p = [result["probs"][k] for k in ESCI.keys]
        assert sum(p) == pytest.approx(1.0, abs=1e-5)  # six decimals, as in a score file
        assert result["label"] == max(result["probs"], key=result["probs"].get)
        assert result["score"] == pytest.approx(expected_score(p), abs=1e-5)
        cumulative, tier = 0.0, "I"  # the CumPT rule with the thresholds above, by hand
        for key, threshold in zip(ESCI.keys, (0.3, 0.5, 0.8)):
            cumulative += result["probs"][key]
            if cumulative >= threshold:
                tier = key
                break
        assert result["tier"] == tier

    # the server's batched answer is the in-process scorer's answer for the same pair
    from taosr1_plugins import plugins

    scorer = plugins.get("deployment_adapter", "hf")(str(tiny_model_dir), ESCI, device="cpu")
    record = Record(id="a", query=pairs[0]["query"], item=Item(title=pairs[0]["item"]), scheme="esci")
    direct = scorer.probabilities([record])[0]
    assert [results[0]["probs"][k] for k in ESCI.keys] == pytest.approx(direct, abs=1e-5)


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"{not json", 400, "invalid JSON"),
        (b'{"pairs": [{"item": "x"}]}', 422, "pairs[0].query"),
        (b'{"pairs": [{"query": "q"}]}', 422, "pairs[0].item"),
        (b'{"pairs": [{"query": "q", "item": ""}]}', 422, "pairs[0].item"),
        (b'{"pairs": [{"query": "q", "item": {"brand": "b"}}]}', 422, "pairs[0].item"),
        (b'{"pairs": [{"query": "q", "item": "x", "extra": 1}]}', 422, "extra"),
        (b'{"items": []}', 422, "unknown fields"),
        (b'{"pairs": []}', 422, "empty"),
        (b'{"pairs": "q"}', 422, "must be a list"),
        (b"[]", 422, "empty"),
        (json.dumps({"pairs": [{"query": "q", "item": "x"}] * (MAX_PAIRS + 1)}).encode(), 413, "limit is 8"),
        (json.dumps({"pairs": [{"query": "q" * MAX_BODY, "item": "x"}]}).encode(), 413, "bytes"),
    ],
)
def test_bad_requests_get_4xx_naming_the_problem(server, content, status, message):
    response = httpx.post(f"{server}/v1/score", content=content, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


def test_200_concurrent_requests_are_batched_and_the_server_keeps_serving(server):
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
            async def one(i: int) -> httpx.Response:
                if i % 10 == 9:  # interleave bad requests
                    return await client.post("/v1/score", content=b"{oops", headers={"content-type": "application/json"})
                pair = {"query": f"query {i}", "item": f"item number {i} " + "word " * (i % 7)}
                return await client.post("/v1/score", json=[pair])

            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), timeout=120)

    responses = asyncio.run(run())
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 180 and statuses.count(400) == 20
    assert all(r.json()["results"][0]["id"] == "pair-0" for r in responses if r.status_code == 200)
    health = httpx.get(f"{server}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["pairs"] >= 180
    assert 1 < health["largest_batch"] <= health["max_batch"]  # concurrent pairs shared forward passes
    assert health["batches"] < health["pairs"]
    after = httpx.post(f"{server}/v1/score", json={"pairs": [{"query": "q", "item": "x"}]}, timeout=30)
    assert after.status_code == 200
