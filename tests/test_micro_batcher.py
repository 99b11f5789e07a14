"""MicroBatcher: jobs of one key share a batch, in arrival order, and a failing job fails alone."""

from __future__ import annotations

import threading

import pytest

from taosr1_plugins.deploy.serving.batching import MicroBatcher


class Recorder:
    """A run() that blocks until released, so the test controls what is queued while a batch runs."""

    def __init__(self):
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, jobs: list[str]) -> list[str]:
        self.started.set()
        self.release.wait(timeout=10)
        if "bad" in jobs:
            raise ValueError("the model cannot take this job")
        self.batches.append(list(jobs))
        return [job.upper() for job in jobs]


def test_held_jobs_of_one_key_share_the_next_batch():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=4, max_wait=0.2, key=lambda job: job[0])
    futures = [batcher.submit("a0")]
    run.started.wait(timeout=10)  # the worker is inside run(["a0"]); everything below queues behind it
    futures += [batcher.submit(job) for job in ["a1", "b1", "b2", "a2", "b3"]]
    run.release.set()
    assert [f.result(timeout=10) for f in futures] == ["A0", "A1", "B1", "B2", "A2", "B3"]
    # a1 and a2 ride together; b1, b2 and b3, held while the a-batch filled, ride together after it
    assert run.batches == [["a0"], ["a1", "a2"], ["b1", "b2", "b3"]]


def test_one_bad_job_does_not_fail_its_batch():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=4, max_wait=0.2)
    futures = [batcher.submit("x")]
    run.started.wait(timeout=10)
    futures += [batcher.submit(job) for job in ["y", "bad", "z"]]
    run.release.set()
    assert futures[0].result(timeout=10) == "X"
    assert [futures[i].result(timeout=10) for i in (1, 3)] == ["Y", "Z"]
    with pytest.raises(ValueError, match="cannot take"):
        futures[2].result(timeout=10)
