"""The request batcher both servers use: one worker thread owns the model (it is not safe to call from
several threads at once), and jobs from any request that arrive within ``max_wait`` of each other share
one batch of up to ``max_batch``."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any


MAX_WAIT_S = 10.0  # a batch waiting longer to fill is a misconfiguration: every client would wait that long


class WorkerDied(RuntimeError):
    """The batch thread has stopped: nothing submitted will ever run (the server answers 503)."""


class MicroBatcher:
    """``submit(job)`` -> a Future of ``run([job, ...])``'s result for that job.

    Only jobs with equal ``key(job)`` share a batch (e.g. the same sampling settings); a job taken from
    the queue that does not fit waits for the next batch, ahead of newer ones. A batch that fails is
    retried one job at a time, so one job the model cannot take never fails the others.
    """

    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], *, max_batch: int, max_wait: float,
                 key: Callable[[Any], Hashable] = lambda job: None, name: str = "batch"):
        # float("inf") passes "min=0" and then kills the thread at its first queue wait (OverflowError)
        if not 0 <= max_wait <= MAX_WAIT_S:  # also false for NaN
            raise ValueError(f"max_wait must be between 0 and {MAX_WAIT_S:g} seconds, got {max_wait}")
        self.run, self.max_batch, self.max_wait, self.key = run, max(1, max_batch), max_wait, key
        self.jobs: queue.Queue[tuple[Any, Future]] = queue.Queue()
        self.batches = 0
        self.items = 0  # jobs finished in a batch
        self.largest_batch = 0
        self.died: BaseException | None = None  # why the thread stopped, if it did
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self.jobs.qsize()

    @property
    def alive(self) -> bool:
        return self.died is None and self._thread.is_alive()

    def submit(self, job: Any) -> Future:
        """A Future of the job's result; once the thread has died, one that has already failed (WorkerDied)."""
        future: Future = Future()
        self.jobs.put((job, future))
        if not self.alive:  # after the put: a job queued while the thread was dying is failed here or by _work
            self._fail_queued()
        return future

    def _work(self) -> None:
        held: list[tuple[Any, Future]] = []
        try:
            self._loop(held)
        except BaseException as exc:  # noqa: BLE001  whatever stops the thread, no job may wait for it forever
            self.died = exc
            for _, future in held:
                _fail(future, self.death())
            self._fail_queued()

    def death(self) -> WorkerDied:
        exc = self.died
        cause = f"{type(exc).__name__}: {exc}" if exc is not None else "it stopped"
        return WorkerDied(f"the batch worker died ({cause}); restart the server")

    def _fail_queued(self) -> None:
        while True:
            try:
                _, future = self.jobs.get_nowait()
            except queue.Empty:
                return
            _fail(future, self.death())

    def _loop(self, held: list[tuple[Any, Future]]) -> None:
        # held: taken from the queue, but not of the last batch's key
        while True:
            first = held.pop(0) if held else self.jobs.get()
            batch = [first]
            try:
                deadline, key = time.monotonic() + self.max_wait, self.key(first[0])
                # held jobs of this key joined the queue before anything still in it, so they board first
                waiting: list[tuple[Any, Future]] = []
                for entry in held:
                    (batch if len(batch) < self.max_batch and self.key(entry[0]) == key else waiting).append(entry)
                held[:] = waiting
                while len(batch) < self.max_batch:
                    try:
                        entry = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    (batch if self.key(entry[0]) == key else held).append(entry)
                self._run(batch)
            except BaseException:
                held.extend(batch)  # so that _work fails them too (a job in both is failed once)
                raise

    def _run(self, batch: list[tuple[Any, Future]]) -> None:
        try:
            results = self.run([job for job, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for entry in batch:
                    self._run([entry])
                return
            _fail(batch[0][1], exc)
            return
        self.batches += 1
        self.items += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        for (_, future), result in zip(batch, results):
            if not future.done():  # a client that went away cancelled its future
                _resolve(future, result)


def _fail(future: Future, exc: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):  # cancelled meanwhile (a client that went away, a shutdown)
        future.set_exception(exc)


def _resolve(future: Future, result: Any) -> None:
    with contextlib.suppress(InvalidStateError):  # cancelled between the check and the set: not the thread's death
        future.set_result(result)
