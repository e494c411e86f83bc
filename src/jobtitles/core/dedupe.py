"""Each distinct model input scored once. CRM exports and job-posting tables repeat themselves ("Software
Engineer" thousands of times): rows are grouped by a key, one row per group is scored, and the answers are fanned
back out in input order. The caller bounds the memory by what it passes in (a chunk of a file, an Arrow batch of
a Spark partition), never a global set over a whole input."""

from __future__ import annotations

import dataclasses
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
