"""Wall time per part of a run (load, tokenize, each model's head, training and scoring, the baseline, the
decisions, label issues, files), for cv_results.json and the report: the share that is not training the
transformer is a target of its own."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

TRAINING_SUFFIX = "_train"  # parts named "<model>_train" are the transformer's training steps


class PartTimes:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float | None) -> None:
        if seconds is not None:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + float(seconds), 3)


def training_share(parts: dict[str, float], total: float | None) -> float | None:
    """The share of the run's wall time spent in the transformer's training steps."""
    if not total:
        return None
    return sum(v for k, v in parts.items() if k.endswith(TRAINING_SUFFIX)) / total
