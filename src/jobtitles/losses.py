"""Class-imbalance weights for BCEWithLogits, computed on a training split only."""

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
