"""Losses for the Trainer: BCE with per-label positive weights (from a training split only), and cross-entropy
within exclusive label groups (group_loss: softmax)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def pos_weight(y_train: np.ndarray, mode: str) -> np.ndarray | None:
    """Per-label positive weight = negatives/positives (inverse_frequency) or its square root; None for 'none'.

    A label with no positive row in the split gets weight 1 (nothing to up-weight)."""
    if mode == "none":
        return None
    positives = np.asarray(y_train).sum(axis=0)
    negatives = len(y_train) - positives
    ratio = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    if mode == "sqrt_inverse_frequency":
        ratio = np.sqrt(ratio)
    elif mode != "inverse_frequency":
        raise ValueError(f"pos_weight mode must be none, sqrt_inverse_frequency or inverse_frequency, found {mode!r}")
    return np.maximum(ratio, 1e-3).astype(np.float32)


def weighted_bce_loss(weights: np.ndarray):
    """A Trainer `compute_loss_func`: mean BCE-with-logits with per-label positive weights."""
    weight_tensor = torch.tensor(weights)

    def loss_fn(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return F.binary_cross_entropy_with_logits(
            logits.float(), labels.to(logits.device, torch.float32), pos_weight=weight_tensor.to(logits.device)
        )

    return loss_fn


def group_softmax_loss(groups: list[tuple[np.ndarray, bool]], n_labels: int, weights: np.ndarray | None = None):
    """A Trainer `compute_loss_func` for labels that come in exclusive groups: cross-entropy over each group's
    logits (an at-most-one group gets an extra "none of them" class with logit 0), BCE-with-logits for the labels
    outside groups. Every row contributes one term per group and one per other label, averaged, so the loss has
    the scale of the plain per-label BCE. `weights` (pos_weight) apply to the labels outside groups."""
    grouped = np.zeros(n_labels, dtype=bool)
    for cols, _ in groups:
        grouped[cols] = True
    others = torch.tensor(np.flatnonzero(~grouped))
    cols_t = [(torch.tensor(cols), exactly_one) for cols, exactly_one in groups]
    other_weights = None if weights is None else torch.tensor(np.asarray(weights)[~grouped])

    def loss_fn(outputs, labels, num_items_in_batch=None):
        logits = (outputs["logits"] if isinstance(outputs, dict) else outputs[0]).float()
        labels = labels.to(logits.device, torch.float32)
        total = logits.new_zeros(())
        for cols, exactly_one in cols_t:
            cols = cols.to(logits.device)
            group_logits, group_labels = logits[:, cols], labels[:, cols]
            target = group_labels.argmax(dim=1)
            if not exactly_one:  # class len(cols) is "none of the group's labels"
                group_logits = torch.cat([group_logits, group_logits.new_zeros(len(logits), 1)], dim=1)
                target = torch.where(group_labels.sum(dim=1) > 0, target, len(cols))
            total = total + F.cross_entropy(group_logits, target, reduction="sum")
        if len(others):
            idx = others.to(logits.device)
            pw = None if other_weights is None else other_weights.to(logits.device)
            total = total + F.binary_cross_entropy_with_logits(logits[:, idx], labels[:, idx], pos_weight=pw,
                                                               reduction="sum")
        return total / (len(logits) * (len(cols_t) + len(others)))

    return loss_fn
