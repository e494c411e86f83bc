"""Server-side micro-batching: requests wait in a queue; model worker threads each take as many queued titles as
fit in a batch (waiting up to `wait_ms` after the first for more), run their own model copy, and answer.

Each worker owns a model (its own tokenizer and session), so workers never share mutable state, and concurrent
single-title requests share one forward pass. A request longer than one batch is split into length-sorted
parts, so its titles are spread over the idle workers and each part pads little. A thread-safe queue.Queue
rather than asyncio.Queue: the consumers are threads; the event loop only enqueues and awaits a future, and the
workers hand every finished part back to the loop with call_soon_threadsafe, so a request's parts are gathered
on the loop thread without locks.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence


from jobtitles.serve.predictor import Prediction, Predictor

logger = logging.getLogger("jobtitles.serve")
STOP_GRACE_S = 0.5  # idle workers stop in microseconds; this bounds the wait for one finishing a model call


@dataclass
class _Request:
    titles: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    results: list[Prediction | None]
    pending: int = 0  # parts not answered yet; read and written on the event loop only


@dataclass
class _Part:
    request: _Request
    positions: list[int]  # indexes into request.titles

    @property
    def titles(self) -> list[str]:
        return [self.request.titles[i] for i in self.positions]


@dataclass
class BatchStats:
    model_calls: int = 0
    titles: int = 0
    parts: int = 0
    largest_batch: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)  # request parts per model call -> count


class MicroBatcher:
    """`await batcher.predict(titles)` from the event loop; one worker thread per predictor.
    `enabled=False`: every request is its own model call, never joined with others nor split."""

    def __init__(self, predictors: Sequence[Predictor], wait_ms: float = 0.0, max_batch_titles: int = 64,
                 enabled: bool = True, on_call: Callable[[int, float], None] | None = None) -> None:
        if not predictors:
            raise ValueError("MicroBatcher needs at least one predictor")
        self.wait_s = max(wait_ms, 0.0) / 1000
        self.max_batch_titles = max(1, max_batch_titles)
        self.enabled = enabled
        self.on_call = on_call  # (titles, seconds) after each model call, from the worker thread
        self.stats = BatchStats()
        self._stats_lock = threading.Lock()
        self._queue: queue.Queue[_Part | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._run, args=(p,), name=f"jobtitles-model-{i}", daemon=True)
                         for i, p in enumerate(predictors)]
        for thread in self._threads:
            thread.start()

    async def predict(self, titles: Sequence[str]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        request = _Request(list(titles), loop.create_future(), loop, [None] * len(titles))
        parts = self._split(request)
        request.pending = len(parts)
        for part in parts:
            self._queue.put(part)
        return await request.future  # type: ignore[return-value]

    def _split(self, request: _Request) -> list[_Part]:
        n = len(request.titles)
        if not self.enabled or n <= self.max_batch_titles:
            return [_Part(request, list(range(n)))]
        # character length orders titles nearly as token length does, without tokenizing on the event loop
        order = sorted(range(n), key=lambda i: len(request.titles[i]))
        return [_Part(request, order[i:i + self.max_batch_titles]) for i in range(0, n, self.max_batch_titles)]

    def queued(self) -> int:
        """Request parts waiting for a worker."""
        return self._queue.qsize()

    @property
    def workers(self) -> int:
        return len(self._threads)

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued parts, then stop the workers (waiting at most `timeout` seconds in all, and at
        least STOP_GRACE_S: a worker still waking up to its stop marker while the interpreter exits can abort
        the process in torch's teardown, "terminate called without an active exception", exit -6)."""
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + max(timeout, STOP_GRACE_S)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- worker threads ---------------------------------------------------------------------------------------
    def _run(self, predictor: Predictor) -> None:
        carry: _Part | None = None  # a part that did not fit this worker's previous batch
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                return
            parts, carry, stop = self._collect(first)
            self._answer(predictor, parts)
            if stop:  # this worker's stop marker came after every part queued before close()
                return

    def _collect(self, first: _Part) -> tuple[list[_Part], _Part | None, bool]:
        """The first part plus what joins it within the wait window; returns (batch, carry, stop marker seen)."""
        parts, n = [first], len(first.positions)
        if not self.enabled:
            return parts, None, False
        deadline = time.monotonic() + self.wait_s
        while n < self.max_batch_titles:
            timeout = deadline - time.monotonic()
            try:
                part = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if part is None:
                return parts, None, True
            if n + len(part.positions) > self.max_batch_titles:
                return parts, part, False
            parts.append(part)
            n += len(part.positions)
        return parts, None, False

    def _answer(self, predictor: Predictor, parts: list[_Part]) -> None:
        # parts of requests that are already over (client gone, or another part failed) are not computed; reading
        # done() from this thread can only be late, which costs one needless computation
        parts = [part for part in parts if not part.request.future.done()]
        if not parts:
            return
        titles = [t for part in parts for t in part.titles]
        start = time.perf_counter()
        try:
            scores, cut = predictor.scores(titles)
            outcomes, row = [], 0
            for part in parts:
                size = len(part.positions)
                outcomes.append((_part_done, part, predictor.predictions(
                    titles[row:row + size], (scores[row:row + size], cut[row:row + size]))))
                row += size
        except Exception as err:  # the request gets a JSON error; the worker keeps serving
            logger.exception("prediction failed")
            outcomes = [(_fail, part, err) for part in parts]
        # counted before the answers leave, so a client that reads the counters after its answer sees its call
        self._record(len(titles), len(parts), time.perf_counter() - start)
        for callback, part, value in outcomes:
            try:
                part.request.loop.call_soon_threadsafe(callback, part, value)
            except RuntimeError:  # the event loop is closed: nobody is waiting for this answer any more
                pass

    def _record(self, titles: int, parts: int, seconds: float) -> None:
        with self._stats_lock:
            s = self.stats
            s.model_calls += 1
            s.titles += titles
            s.parts += parts
            s.largest_batch = max(s.largest_batch, titles)
            s.batch_sizes[parts] = s.batch_sizes.get(parts, 0) + 1
        if self.on_call is not None:
            try:
                self.on_call(titles, seconds)
            except Exception:  # a metrics failure must never stop a worker
                logger.exception("model-call observer failed")


def _part_done(part: _Part, preds: list[Prediction]) -> None:
    request = part.request
    if request.future.done():  # the client went away, or another part failed
        return
    for i, pred in zip(part.positions, preds):
        request.results[i] = pred
    request.pending -= 1
    if request.pending == 0:
        request.future.set_result(request.results)


def _fail(part: _Part, err: Exception) -> None:
    if not part.request.future.done():
        part.request.future.set_exception(err)
