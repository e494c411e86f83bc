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
                    min_support: int, passes: int = 2) -> Tuned:
    """Per-label thresholds on GRID that maximise the micro-F1 of all labels together (coordinate ascent from
    the default thresholds, `passes` sweeps over the labels).

    Micro-F1 rather than each label's own F1: a label's own-F1 optimum on a weakly separated label is often a
    very low threshold that buys a little recall with many false positives, which lowers micro-F1 and subset
    accuracy; with the micro objective a threshold only moves when the run as a whole gains, and it can never
    score below the defaults on the tuning rows. Ties go to the threshold closest to the default, which keeps
    flat optima from drifting. Labels with fewer than `min_support` positive rows keep the default: a handful
    of positives cannot pick a threshold reliably.
    """
    y = np.asarray(y).astype(bool)
    out = np.array(default, dtype=np.float64).copy()
    notes: dict[str, str] = {}
    tunable = []
    for j, label in enumerate(labels):
        positives = int(y[:, j].sum())
        if positives < min_support:
            notes[label] = f"kept {out[j]:.2f}: {positives} positives < tune_min_support={min_support}"
        else:
            tunable.append(j)
    pred = scores >= out
    tp, fp, fn = (pred & y).sum(0), (pred & ~y).sum(0), (~pred & y).sum(0)
    for _ in range(passes):
        for j in tunable:
            grid_pred = scores[:, j][:, None] >= GRID[None, :]
            tp_j = (grid_pred & y[:, j][:, None]).sum(axis=0)
            fp_j = (grid_pred & ~y[:, j][:, None]).sum(axis=0)
            fn_j = y[:, j].sum() - tp_j
            tp_all = tp.sum() - tp[j] + tp_j
            denom = 2 * tp_all + (fp.sum() - fp[j] + fp_j) + (fn.sum() - fn[j] + fn_j)
            micro = np.where(denom > 0, 2 * tp_all / np.maximum(denom, 1), 0.0)
            best = np.flatnonzero(np.isclose(micro, micro.max()))
            k = best[np.argmin(np.abs(GRID[best] - default[j]))]
            out[j], tp[j], fp[j], fn[j] = float(GRID[k]), tp_j[k], fp_j[k], fn_j[k]
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
