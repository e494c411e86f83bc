"""Stratified samples of labelled rows: the cross-validated rows of a time-budgeted run, and the rows a large
set's linear-probe head and fit check look at (their cost grows with the rows, their answer hardly does)."""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

# Above this many rows the probe heads and the final model's fit check use a sample: on 100,000 rows they took
# a large part of a 30-minute budget (docs/benchmarks.md), and 20,000 rows fit a logistic-regression head well.
LARGE_SET_ROWS = 20_000
# ... and in that sample every row of a label rarer than this: its probe weights and its recall in the fit check
# would otherwise rest on a handful of rows
RARE_LABEL_ROWS = 1_000


def stratified_rows(y: np.ndarray, n: int, seed: int) -> np.ndarray | None:
    """Exactly `n` rows (sorted), iteratively stratified on the label columns, or None when there are no more."""
    total = len(y)
    if n >= total:
        return None
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, train_size=n, test_size=total - n, random_state=seed)
    rows, rest = next(splitter.split(np.zeros((total, 1)), y))
    # the splitter's sizes can be off by a row or two; the caller's figure is what reports say
    rng = np.random.default_rng(seed)
    if len(rows) > n:
        rows = rng.choice(rows, n, replace=False)
    elif len(rows) < n:
        rows = np.concatenate([rows, rng.choice(rest, n - len(rows), replace=False)])
    return np.sort(rows)


def large_set_rows(y: np.ndarray, seed: int) -> np.ndarray | None:
    """A stratified sample of LARGE_SET_ROWS rows plus every row of a label with fewer than RARE_LABEL_ROWS rows
    (sorted), or None (all rows) when the set has no more than LARGE_SET_ROWS."""
    rows = stratified_rows(y, LARGE_SET_ROWS, seed)
    if rows is None:
        return None
    counts = y.sum(axis=0)
    rare_labels = np.flatnonzero((counts > 0) & (counts < RARE_LABEL_ROWS))
    if len(rare_labels):
        rows = np.union1d(rows, np.flatnonzero(y[:, rare_labels].any(axis=1)))
    return rows
