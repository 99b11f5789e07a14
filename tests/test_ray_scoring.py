"""`taosr1 score --executor ray` on a local Ray cluster (2 CPUs): the same rows as the local scorer, every pair
exactly once after an actor or the whole command is SIGKILLed, bad input refused before Ray starts.

One cluster serves the session; the command-line runs join it with --address (the code that starts a cluster of
its own is the same ray.init call with address="local")."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.deploy.config import RaySettings
from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records

ray = pytest.importorskip("ray")

# Local and Ray batch the pairs differently, and padding changes float sums in the last bits: probabilities are
# written to 6 decimals, and agree to within this (measured: 1e-6 on the tiny model, see docs/deployment.md).
PROB_TOLERANCE = 1e-4
N_PAIRS = 200  # the whole ESCI sample that ships in the package


@pytest.fixture(scope="session")
def ray_address():
    """One local cluster of 2 CPUs for the session; what score_on_ray finds already joined, and what the CLI joins."""
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def esci_pairs():
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.data.samples import esci_sample_path

    records = list(import_records("esci", esci_sample_path()))
    assert len(records) == N_PAIRS
    return records


@pytest.fixture(scope="session")
def local_tiny(tmp_path_factory, tiny_model_dir, esci_pairs):
    """The local scorer's rows for the ESCI pairs, and a CumPT fitted on them (meaningless for a random model,
    but tiers and calibration go through the same code either way)."""
    from taosr1_plugins.deploy.calibration import fit_cumpt, write_cumpt

    folder = tmp_path_factory.mktemp("local_tiny")
    plain = score_records(tiny_model_dir, esci_pairs, folder / "plain.jsonl", ScoreSettings(device="cpu", progress=False))
    cumpt = write_cumpt(fit_cumpt(plain), folder / "cumpt.json")
    from taosr1_plugins.deploy.calibration import load_cumpt

    tiered = score_records(tiny_model_dir, esci_pairs, folder / "tiered.jsonl",
                           ScoreSettings(device="cpu", progress=False, cumpt=load_cumpt(cumpt).to_cumpt()))
    return rows_by_id(plain), rows_by_id(tiered), cumpt


def rows_by_id(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == len(rows), "an id appears twice"
    return by_id


def assert_same_scores(ray_rows: dict[str, dict], local_rows: dict[str, dict]) -> None:
    assert sorted(ray_rows) == sorted(local_rows)  # every pair, once
    for pair_id, row in ray_rows.items():
        local = local_rows[pair_id]
        assert set(row) == set(local)
        assert (row["tier"], row["label"], row["gold"], row["query"]) == (local["tier"], local["label"],
                                                                           local["gold"], local["query"])
        for key, p in row["probs"].items():
            assert p == pytest.approx(local["probs"][key], abs=PROB_TOLERANCE)
        assert row["score"] == pytest.approx(local["score"], abs=PROB_TOLERANCE)


def scoring_actors() -> list[int]:
    """Pids of the processes of Ray scoring actors (Ray titles them after the class: MapWorker(...PairScorer))."""
    import psutil

    return [proc.info["pid"] for proc in psutil.process_iter(["pid", "cmdline"])
            if "PairScorer" in " ".join(proc.info["cmdline"] or [])]


def wait_until_no_scoring_actors(timeout: float = 120) -> None:
    """Ray ends a finished (or killed) job's actors shortly after it: wait, so that what follows sees only its own."""
    deadline = time.monotonic() + timeout
    while scoring_actors():
        assert time.monotonic() < deadline, "the actors of an earlier run are still alive"
        time.sleep(0.2)


def ray_cli(*args, address: str) -> list[str]:
    return [sys.executable, "-m", "taosr1_plugins.cli", "score", "--executor", "ray", "--address", address,
            "--device", "cpu", *map(str, args)]


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def write_parquet_shards(records, folder: Path, shards: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    size = -(-len(records) // shards)
    for i in range(shards):
        # a real export would type an empty attributes map; Arrow cannot infer a type for {} (a struct of nothing)
        rows = [r.model_dump(exclude_defaults=True) for r in records[i * size : (i + 1) * size]]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"shard-{i:03d}.parquet")


def test_cli_on_parquet_shards_matches_local_with_tiers(tmp_path, ray_address, tiny_model_dir, esci_pairs, local_tiny):
    _, local_tiered, cumpt = local_tiny
    write_parquet_shards(esci_pairs, tmp_path / "pairs", shards=3)
    out = tmp_path / "scores.jsonl"
    done = subprocess.run(ray_cli("--model", tiny_model_dir, "--data", tmp_path / "pairs", "--out", out, "--cumpt",
                                  cumpt, "--actors", 2, "--part-rows", 40, "--no-progress", address=ray_address),
                          check=False, capture_output=True, text=True, env=run_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {N_PAIRS} scores" in done.stdout
    assert_same_scores(rows_by_id(out), local_tiered)
    assert all("margin" in row for row in rows_by_id(out).values())  # tiers from the calibrated distribution
    assert len(read_scores(out).rows) == N_PAIRS  # calibrate and eval read it like the local scorer's file
    assert not out.with_name(out.name + ".parts").exists()


def test_actor_killed_mid_run_is_retried_and_nothing_is_lost(tmp_path, ray_address, tiny_model_dir, esci_pairs,
                                                              local_tiny):
    """The Python API's way in (score_records with executor ray, pairs in memory); one scoring actor SIGKILLed
    once parts are landing: Ray restarts it, retries its batch, and OUT holds every pair exactly once."""
    import psutil

    out = tmp_path / "scores.jsonl"
    parts = out.with_name(out.name + ".parts")
    killed: list[int] = []
    seen: set[int] = set()  # every scoring actor process of the run, before and after the kill
    finished = threading.Event()
    wait_until_no_scoring_actors()  # an actor found from now on is this run's

    def kill_one_actor() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not finished.is_set():
            actors = scoring_actors()
            seen.update(actors)
            if not killed and actors and parts.is_dir() and any(parts.glob("part-*.jsonl")):
                os.kill(actors[0], signal.SIGKILL)
                killed.append(actors[0])
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_one_actor)
    watcher.start()
    settings = ScoreSettings(device="cpu", progress=False, batch_size=4, executor="ray",
                             ray=RaySettings(actors=2, part_rows=10))
    try:
        score_records(tiny_model_dir, esci_pairs, out, settings)
    finally:
        finished.set()
        watcher.join()
    assert killed, "no scoring actor was found to kill"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    assert len(seen) > 2  # Ray started a process in place of the killed one (a pool of 2)
    assert_same_scores(rows_by_id(out), local_tiny[0])


def test_command_killed_mid_run_resumes_from_its_parts(tmp_path, ray_address, tiny_model_dir, esci_pairs, local_tiny):
    # as an export may come: gzipped, a byte-order mark, a blank line (the driver's reader and Ray's agree on them)
    data = tmp_path / "pairs.jsonl.gz"
    lines = [record.model_dump_json(exclude_none=True) for record in esci_pairs]
    data.write_bytes(gzip.compress(("\ufeff" + "\n".join(lines[:50] + [""] + lines[50:]) + "\n").encode()))
    out = tmp_path / "scores.jsonl"
    parts = out.with_name(out.name + ".parts")
    args = ray_cli("--model", tiny_model_dir, "--data", data, "--out", out, "--actors", 1, "--part-rows", 10,
                   "--batch-size", 2, "--no-progress", address=ray_address)
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=run_env())
    try:
        deadline = time.monotonic() + 300
        while len(list(parts.glob("part-*.jsonl"))) < 2 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    wait_until_no_scoring_actors()  # Ray ends the killed job's actors; then no part lands behind our back
    kept = {}
    for part in parts.glob("part-*.jsonl"):
        kept.update(rows_by_id(part))
    assert 0 < len(kept) < N_PAIRS and not out.exists()

    again = subprocess.run(args, check=False, capture_output=True, text=True, env=run_env(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming: {len(kept)} of {N_PAIRS} pairs already scored" in again.stderr
    rows = rows_by_id(out)
    for pair_id, row in kept.items():
        assert rows[pair_id] == row  # the first run's rows, as written
    assert_same_scores(rows, local_tiny[0])

    # OUT is finished: a third run refuses to replace it, as the local scorer does
    third = subprocess.run(args, check=False, capture_output=True, text=True, env=run_env(), timeout=600)
    assert third.returncode == 2 and "exists" in third.stderr


@pytest.mark.slow  # a minute on 2 CPUs: SmolLM2 scores the pairs twice
def test_smollm2_matches_local(tmp_path, ray_address, smollm2_dir, esci_pairs):
    pairs = esci_pairs[:32]
    local = score_records(smollm2_dir, pairs, tmp_path / "local.jsonl", ScoreSettings(device="cpu", progress=False))
    on_ray = score_records(smollm2_dir, pairs, tmp_path / "ray.jsonl",
                           ScoreSettings(device="cpu", progress=False, executor="ray",
                                         ray=RaySettings(actors=2, part_rows=8)))
    assert_same_scores(rows_by_id(on_ray), rows_by_id(local))


def test_bad_row_is_refused_before_ray_starts(tmp_path, esci_pairs):
    """Exit status 2 naming file, line and field; no cluster address is given, none is needed to fail."""
    from typer.testing import CliRunner

    from taosr1_plugins.cli import app

    folder = tmp_path / "pairs"
    write_jsonl(folder / "a.jsonl", esci_pairs[:3])
    bad = [r.model_dump(exclude_none=True) for r in esci_pairs[3:6]]
    bad[1]["item"]["title"] = " "
    write_jsonl(folder / "b.jsonl", bad)
    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(app, ["score", "--model", "tiny", "--data", str(folder), "--out", str(out),
                                      "--executor", "ray", "--address", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert f"{folder / 'b.jsonl'}:2: field 'item.title'" in result.output
    assert not out.exists() and not out.with_name(out.name + ".parts").exists()

    write_jsonl(folder / "c.jsonl", esci_pairs[1:2])  # an id already in a.jsonl
    (folder / "b.jsonl").unlink()
    result = CliRunner().invoke(app, ["score", "--model", "tiny", "--data", str(folder), "--out", str(out),
                                      "--executor", "ray", "--address", "127.0.0.1:1"])
    assert result.exit_code == 2 and f"{folder / 'c.jsonl'}:1: field 'id': duplicate id" in result.output

    result = CliRunner().invoke(app, ["score", "--model", "tiny", "--data", str(folder), "--out", str(out),
                                      "--address", "127.0.0.1:1"])
    assert result.exit_code == 2 and "--executor ray" in result.output


def test_parquet_row_errors_name_the_row(tmp_path, esci_pairs):
    from taosr1_plugins.deploy.pair_files import read_pair_records
    from taosr1_plugins.errors import DataError

    write_parquet_shards(esci_pairs[:10], tmp_path / "pairs", shards=2)
    assert [r.id for r in read_pair_records(tmp_path / "pairs")] == [r.id for r in esci_pairs[:10]]
    bad = [r.model_dump(exclude_defaults=True) for r in esci_pairs[:3]]
    bad[2]["label"] = "X"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(bad), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet:3: field 'label'"):
        read_pair_records(tmp_path / "bad.parquet")


def test_run_config_takes_the_ray_executor_without_changing_the_deploy_fingerprint():
    from taosr1_plugins.pipeline.config import DeploySection

    ray_deploy = DeploySection.model_validate({"executor": "ray", "ray": {"actors": 4, "address": "auto"}})
    assert ray_deploy.ray.actors == 4 and ray_deploy.executor == "ray"
    assert ray_deploy.fingerprint() == DeploySection().fingerprint()  # moving to a cluster re-runs nothing
    with pytest.raises(ValueError, match="executor"):
        DeploySection.model_validate({"executor": "spark"})
