"""From logits to per-label scores: a sigmoid per label, or (labels trained with `group_loss: softmax`) a
softmax within each exclusive group, whose "none of them" class of an at-most-one group has logit 0."""

from __future__ import annotations

import numpy as np

from jobtitles.metrics import sigmoid

SoftmaxGroups = "list[tuple[np.ndarray, bool]] | None"  # (column indices, exactly_one), as decisions.Groups


def scores_from_logits(logits: np.ndarray, softmax_groups: SoftmaxGroups = None) -> np.ndarray:
    scores = sigmoid(logits)
    for cols, exactly_one in softmax_groups or []:
        z = np.asarray(logits, dtype=np.float64)[:, cols]
        if not exactly_one:
            z = np.concatenate([z, np.zeros((len(z), 1))], axis=1)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        scores[:, cols] = (z / z.sum(axis=1, keepdims=True))[:, :len(cols)]
    return scores
