"""Multi-label metrics from scikit-learn: micro/macro/samples F1, subset accuracy, Hamming loss, per label."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

METRICS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        # macro over labels present in y_true or y_pred: a label absent from both says nothing about the model
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0,
                                   labels=np.flatnonzero((y_true + y_pred).sum(axis=0) > 0))),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),  # exact match of the whole label set
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
    }


def per_label_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    p, r, f, s = precision_recall_fscore_support(
        np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int), average=None,
        labels=list(range(len(labels))), zero_division=0,
    )
    return {lab: {"support": int(s[j]), "precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j])}
            for j, lab in enumerate(labels)}


def mean_std(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (ddof=1) of each metric over folds."""
    keys = per_fold[0].keys() if per_fold else []
    return {k: {"mean": float(np.mean([m[k] for m in per_fold])),
                "std": float(np.std([m[k] for m in per_fold], ddof=1)) if len(per_fold) > 1 else 0.0}
            for k in keys}


def label_agreement(a: np.ndarray, b: np.ndarray, labels: list[str]) -> tuple[float, dict[str, float]]:
    """Two models' label sets on the same rows: the share of rows with the same set, and per label the Jaccard
    index of the rows each gives it (1.0 where neither gives it to any row)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    same = float((a == b).all(axis=1).mean()) if len(a) else 1.0
    # by hand rather than sklearn's jaccard_score: given one column, that reads it as a binary target and
    # answers for the negative class
    both, either = (a & b).sum(axis=0), (a | b).sum(axis=0)
    jaccard = np.where(either > 0, both / np.maximum(either, 1), 1.0)
    return same, {lab: float(v) for lab, v in zip(labels, jaccard)}
