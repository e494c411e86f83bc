"""Repeat-factor sampling of the rows that carry rare labels (Gupta et al., "LVIS: A Dataset for Large Vocabulary
Instance Segmentation", CVPR 2019; detectron2's RepeatFactorTrainingSampler).

A label on a fraction f of the training rows, below the threshold t, gets the repeat factor sqrt(t / f); a row is
repeated by the largest factor among its labels (1 for rows with only frequent labels). The fractional part is
rounded stochastically with the run's seed, once per model, so a rerun of the same command trains on the same
rows. The rows are repeated in the training split only: the held-out rows of a fold and every score are untouched.
"""

from __future__ import annotations

import numpy as np


def repeat_factors(y: np.ndarray, threshold: float) -> np.ndarray:
    """Per row, max over its labels of max(1, sqrt(threshold / label frequency)); 1 for rows without a label."""
    y = np.asarray(y, dtype=bool)
    freq = y.mean(axis=0)
    with np.errstate(divide="ignore"):
        per_label = np.where(freq > 0, np.sqrt(threshold / np.where(freq > 0, freq, 1.0)), 1.0)
    per_label = np.maximum(per_label, 1.0)
    return np.where(y, per_label[None, :], 1.0).max(axis=1, initial=1.0)


def repeated_rows(y: np.ndarray, threshold: float, seed: int) -> np.ndarray:
    """Row indices of the training split with each row repeated floor(r) or ceil(r) times (r its repeat factor,
    the fraction by a seeded coin), in row order: the Trainer shuffles them each epoch."""
    factors = repeat_factors(y, threshold)
    whole = np.floor(factors)
    counts = whole + (np.random.default_rng(seed).random(len(factors)) < factors - whole)
    return np.repeat(np.arange(len(factors)), counts.astype(np.int64))
