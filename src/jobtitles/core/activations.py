"""From logits to per-label scores: a sigmoid per label, or (labels trained with `group_loss: softmax`) a
softmax within each exclusive group, whose "none of them" class of an at-most-one group has logit 0."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from jobtitles.core.metrics import sigmoid


IndexedGroups = list[tuple[np.ndarray, bool]]  # (column indices, exactly_one) per group: the arrays' form


def scores_from_logits(logits: np.ndarray, softmax_groups: IndexedGroups | None = None) -> np.ndarray:
    scores = sigmoid(logits)
    for cols, exactly_one in softmax_groups or []:
        z = np.asarray(logits, dtype=np.float64)[:, cols]
        if not exactly_one:
            z = np.concatenate([z, np.zeros((len(z), 1))], axis=1)
        scores[:, cols] = softmax(z, axis=1)[:, :len(cols)]
    return scores
