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


@pytest.mark.parametrize("max_wait", [float("inf"), float("nan"), -1.0, 1e9])
def test_a_wait_the_thread_cannot_keep_is_refused(max_wait):
    # inf passed the command line's min=0 and then killed the thread at its first queue wait (OverflowError)
    with pytest.raises(ValueError, match="max_wait must be between 0 and"):
        MicroBatcher(Recorder(), max_batch=4, max_wait=max_wait)


def test_when_the_thread_dies_every_job_fails_fast_and_it_says_so():
    """A key function that raises stops the worker outside run(): the job it was on, those queued behind it and
    every later one fail at once with the cause, instead of waiting forever."""
    batcher = MicroBatcher(lambda jobs: [job["v"] for job in jobs], max_batch=4, max_wait=0.05, key=lambda job: job["key"])
    assert batcher.submit({"key": 1, "v": "a"}).result(timeout=10) == "a" and batcher.alive
    dying = batcher.submit({"v": "no key"})  # KeyError in the worker's own loop
    with pytest.raises(RuntimeError, match=r"the batch worker died \(KeyError"):
        dying.result(timeout=10)
    assert not batcher.alive and isinstance(batcher.died, KeyError)
    later = [batcher.submit({"key": 1, "v": str(i)}) for i in range(3)]
    for future in later:
        with pytest.raises(RuntimeError, match="the batch worker died"):
            future.result(timeout=1)
    assert batcher.pending == 0
