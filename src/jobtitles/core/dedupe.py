"""Each distinct model input scored once. CRM exports and job-posting tables repeat themselves ("Software
Engineer" thousands of times): rows are grouped by a key, one row per group is scored, and the answers are fanned
back out in input order. The caller bounds the memory by what it passes in (a chunk of a file, an Arrow batch of
a Spark partition), never a global set over a whole input."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Hashable, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Distinct:
    """`first[j]`: the first row of distinct key j (in first-seen order); `inverse[i]`: row i's distinct key."""

    first: np.ndarray
    inverse: np.ndarray

    @property
    def n(self) -> int:
        return len(self.first)

    def expand(self, per_distinct: np.ndarray) -> np.ndarray:
        """Values computed once per distinct key, one per row in input order."""
        return per_distinct[self.inverse]


def distinct_rows(keys: Sequence[Hashable]) -> Distinct:
    """Rows grouped by equal keys (a dict: linear time, first-seen order kept, so the result is deterministic)."""
    index: dict[Hashable, int] = {}
    inverse = np.empty(len(keys), dtype=np.int64)
    first: list[int] = []
    for i, key in enumerate(keys):
        j = index.setdefault(key, len(first))
        if j == len(first):
            first.append(i)
        inverse[i] = j
    return Distinct(np.asarray(first, dtype=np.int64), inverse)


def compose(outer: Distinct, inner: Distinct) -> Distinct:
    """Two groupings in a row (rows -> distinct strings -> distinct model inputs) as one: rows -> model inputs."""
    return Distinct(outer.first[inner.first], inner.inverse[outer.inverse])


class RecentTitles:
    """The answers for the most recently scored titles, at most `size` of them (least recently used go first):
    a server asked for "Software Engineer" all day, or a file whose frequent titles recur in every chunk, scores
    each once. Keyed by the exact (cleaned) title, so a hit is the answer scoring would give; memory is bounded
    by `size`. (An OrderedDict: the stdlib's lru_cache memoises one call at a time, and a model call scores a
    batch of titles together.)"""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self.lock = threading.Lock()  # model workers are threads; each batch reads and writes the map
        self.hits = self.misses = 0

    def lookup(self, titles: Sequence[str]) -> list[tuple[np.ndarray, bool] | None]:
        """The answers of `titles` (None where not held); TitleClassifier asks once per distinct title of a call."""
        with self.lock:
            found = []
            for title in titles:
                item = self.items.get(title)
                if item is not None:
                    self.items.move_to_end(title)
                found.append(item)
            hits = sum(f is not None for f in found)
            self.hits, self.misses = self.hits + hits, self.misses + len(found) - hits
            return found

    def store(self, titles: Sequence[str], scores: np.ndarray, truncated: Sequence[bool]) -> None:
        with self.lock:
            for title, row, cut in zip(titles, scores, truncated):
                self.items[title] = (row, cut)
                self.items.move_to_end(title)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
