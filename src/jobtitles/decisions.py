"""From sigmoid scores to label sets: thresholds (global or per label), tuning, and the at-least-one rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def threshold_vector(labels: list[str], default: float, per_label: dict[str, float] | None = None) -> np.ndarray:
    per_label = per_label or {}
    unknown = sorted(set(per_label) - set(labels))
    if unknown:
        from jobtitles.errors import UserError

        raise UserError(f"label_thresholds names unknown labels {unknown}; the labels are {labels}")
    return np.array([per_label.get(lab, default) for lab in labels], dtype=np.float64)


def decide(scores: np.ndarray, thresholds: np.ndarray | float, at_least_one: bool) -> np.ndarray:
    """Multi-hot decisions; with at_least_one, a row with no score over its threshold gets its top label."""
    scores = np.asarray(scores)
    pred = scores >= np.asarray(thresholds)
    if at_least_one and len(scores):
        empty = ~pred.any(axis=1)
        pred[empty, scores[empty].argmax(axis=1)] = True
    return pred.astype(np.int8)


@dataclass
class Tuned:
    thresholds: np.ndarray
    notes: dict[str, str] = field(default_factory=dict)  # label -> why it kept the default


def tune_thresholds(scores: np.ndarray, y: np.ndarray, labels: list[str], default: np.ndarray,
                    min_support: int) -> Tuned:
    """Per label, the threshold on GRID that maximises that label's F1.

    Per-label F1 rather than run-level micro-F1: each label's decision then depends on its own scores only, so a
    frequent label cannot pull a rare label's threshold, and the choice is easy to read in the report. Ties go to
    the threshold closest to the default, which keeps flat optima from drifting. Labels with fewer than
    `min_support` positive rows keep the default: a handful of positives cannot pick a threshold reliably.
    """
    y = np.asarray(y).astype(bool)
    out = np.array(default, dtype=np.float64).copy()
    notes: dict[str, str] = {}
    for j, label in enumerate(labels):
        positives = int(y[:, j].sum())
        if positives < min_support:
            notes[label] = f"kept {out[j]:.2f}: {positives} positives < tune_min_support={min_support}"
            continue
        pred = scores[:, j][:, None] >= GRID[None, :]
        tp = (pred & y[:, j][:, None]).sum(axis=0)
        fp = (pred & ~y[:, j][:, None]).sum(axis=0)
        fn = positives - tp
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        out[j] = float(GRID[best[np.argmin(np.abs(GRID[best] - default[j]))]])
    return Tuned(out, notes)


def cross_fitted(scores: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], labels: list[str],
                 default: np.ndarray, min_support: int) -> list[Tuned]:
    """Thresholds for fold k tuned on the out-of-fold rows of the other folds only, so the labels of the rows
    a fold is scored on never choose the thresholds it is scored with."""
    tuned = []
    for _, test in folds:
        others = np.setdiff1d(np.arange(len(y)), test)
        tuned.append(tune_thresholds(scores[others], y[others], labels, default, min_support))
    return tuned
