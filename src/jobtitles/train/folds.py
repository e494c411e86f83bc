"""Fold indices from MultilabelStratifiedKFold, and which labels each test fold lacks."""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold


def make_folds(y: np.ndarray, n_splits: int, shuffle: bool, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=shuffle, random_state=seed if shuffle else None)
    x_dummy = np.zeros((len(y), 1))
    return [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(x_dummy, y)]


def missing_labels(y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], labels: list[str]) -> dict[str, list[int]]:
    """label -> folds (0-based) whose test split has no positive row of it."""
    out: dict[str, list[int]] = {}
    for k, (_, test) in enumerate(folds):
        for j in np.flatnonzero(y[test].sum(axis=0) == 0):
            out.setdefault(labels[j], []).append(k)
    return out
