"""Server-side micro-batching: requests wait in a queue; one worker thread runs the model on as many queued
titles as fit in a batch (waiting up to `wait_ms` after the first for more), then answers each request.

One thread owns the model, so model calls never compete for the cores, and concurrent single-title requests
share one forward pass. A thread-safe queue.Queue rather than asyncio.Queue: the consumer is a thread, and the
event loop only enqueues and awaits a future that the worker resolves with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from jobtitles.serve.predictor import Prediction, Predictor

logger = logging.getLogger("jobtitles.serve")


@dataclass
class _Job:
    titles: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass
class BatchStats:
    model_calls: int = 0
    titles: int = 0
    requests: int = 0
    largest_batch: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)  # requests per model call -> count


class MicroBatcher:
    """`await batcher.predict(titles)` from the event loop; `enabled=False` runs every request on its own."""

    def __init__(self, predictor: Predictor, wait_ms: float = 0.0, max_batch_titles: int = 64,
                 enabled: bool = True) -> None:
        self.predictor = predictor
        self.wait_s = max(wait_ms, 0.0) / 1000
        self.max_batch_titles = max(1, max_batch_titles)
        self.enabled = enabled
        self.stats = BatchStats()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._carry: _Job | None = None  # a job that did not fit the previous batch
        self._thread = threading.Thread(target=self._run, name="jobtitles-model", daemon=True)
        self._thread.start()

    async def predict(self, titles: Sequence[str]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        job = _Job(list(titles), loop.create_future(), loop)
        self._queue.put(job)
        return await job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)

    # --- worker thread ----------------------------------------------------------------------------------------
    def _next(self, timeout: float | None) -> _Job | None:
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job plus what joins it within the wait window; True when the stop marker was seen."""
        jobs, n = [first], len(first.titles)
        if not self.enabled:
            return jobs, False
        deadline = time.monotonic() + self.wait_s
        while n < self.max_batch_titles:
            try:
                job = self._next(deadline - time.monotonic())
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            if n + len(job.titles) > self.max_batch_titles:
                self._carry = job
                break
            jobs.append(job)
            n += len(job.titles)
        return jobs, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._next(None)
            if first is None:
                break
            jobs, stop = self._collect(first)
            self._answer(jobs)
        if self._carry is not None:
            self._answer([self._carry])

    def _answer(self, jobs: list[_Job]) -> None:
        titles = [t for job in jobs for t in job.titles]
        try:
            scores = self.predictor.scores(titles)
            start = 0
            for job in jobs:
                part = scores[start:start + len(job.titles)]
                start += len(job.titles)
                job.loop.call_soon_threadsafe(_resolve, job.future, self.predictor.predictions(job.titles, part))
        except Exception as err:  # the request gets a JSON error; the worker keeps serving
            logger.exception("prediction failed")
            for job in jobs:
                job.loop.call_soon_threadsafe(_fail, job.future, err)
        s = self.stats
        s.model_calls += 1
        s.titles += len(titles)
        s.requests += len(jobs)
        s.largest_batch = max(s.largest_batch, len(titles))
        s.batch_sizes[len(jobs)] = s.batch_sizes.get(len(jobs), 0) + 1


def _resolve(future: asyncio.Future, value) -> None:
    if not future.done():  # the client may have gone away and the request been cancelled
        future.set_result(value)


def _fail(future: asyncio.Future, err: Exception) -> None:
    if not future.done():
        future.set_exception(err)
