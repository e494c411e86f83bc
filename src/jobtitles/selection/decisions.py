"""Choosing the decision rule a model ships with: per-label thresholds tuned and shrunk on out-of-fold scores,
with or without group decoding, each candidate scored cross-fitted (`decision_rule.DecisionRule` applies it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from jobtitles.selection.candidates import (ALL, CONFIGURED, CONFIGURED_THRESHOLDS, MEAN_OBJECTIVE, SHRUNK_THRESHOLDS,
                                  SUBSET_OBJECTIVE, TUNED_THRESHOLDS,
                                  Candidate)
from jobtitles.core.decision_rule import DecisionRule
from jobtitles.core.label_groups import LabelGroup
from jobtitles.core.metrics import multilabel_metrics

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def threshold_vector(labels: list[str], default: float, per_label: dict[str, float] | None = None) -> np.ndarray:
    per_label = per_label or {}
    unknown = sorted(set(per_label) - set(labels))
    if unknown:
        from jobtitles.core.errors import UserError

        raise UserError(f"label_thresholds names unknown labels {unknown}; the labels are {labels}")
    return np.array([per_label.get(lab, default) for lab in labels], dtype=np.float64)


def decide_per_fold(scores: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                    rules: DecisionRule | list[DecisionRule]) -> np.ndarray:
    """Out-of-fold decisions: each test fold decided with its own rule (a list, one per fold: chosen on the
    other folds' rows) or with the same one."""
    pred = np.zeros(np.shape(scores), dtype=np.int8)
    for k, (_, test) in enumerate(folds):
        rule = rules[k] if isinstance(rules, list) else rules
        pred[test] = rule.decide(scores[test])
    return pred


def fold_metrics(y: np.ndarray, pred: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, float]]:
    return [multilabel_metrics(y[test], pred[test]) for _, test in folds]


@dataclass
class Tuned:
    thresholds: np.ndarray
    notes: dict[str, str] = field(default_factory=dict)  # label -> why it kept the default


def tune_thresholds(scores: np.ndarray, y: np.ndarray, labels: list[str], default: np.ndarray,
                    min_support: int, passes: int = 2, only: set[int] | None = None) -> Tuned:
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
        elif only is not None and j not in only:
            notes[label] = (f"kept {out[j]:.2f}: fewer than tune_min_support={min_support} positives in the tuning "
                            "rows of some fold, so its tuned threshold could not be evaluated")
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


def shrink(tuned: np.ndarray, default: np.ndarray, positives: np.ndarray, strength: int) -> np.ndarray:
    """Thresholds pulled toward the configured ones in proportion to each label's support: a label with n
    positives keeps n / (n + strength) of its tuned move (few positives, little trust)."""
    weight = positives / (positives + max(strength, 1))
    return np.round(default + (tuned - default) * weight, 2)


@dataclass
class RuleChoice:
    """Which decision rule the model ships with, chosen on cross-fitted out-of-fold figures."""

    chosen: str  # the shipped candidate's key (candidates.Candidate.key)
    rule: DecisionRule  # the shipped rule (thresholds from all out-of-fold rows, as evaluated)
    fold_thresholds: dict[str, list[np.ndarray]]  # candidates.BASES -> thresholds per fold
    fold_micro_f1: dict[str, list[float]]  # candidate -> micro-F1 of each test fold
    fold_subset_accuracy: dict[str, list[float]]  # candidate -> subset accuracy of each test fold
    gain: float  # mean per-fold gain (of the objective) of the best candidate over configured
    noise: float  # standard error of that per-fold gain
    notes: dict[str, str]
    reason: str
    objective: str = MEAN_OBJECTIVE


def whole_label_sets(y: np.ndarray, labels: Sequence[str], groups: Sequence[LabelGroup]) -> bool:
    """Every label belongs to a group and every row has exactly one label of each group: a label set is then
    right or wrong as a whole. Micro-F1 gives part credit to a set with two labels of a group (one of them
    right), which the user can never use, so there subset accuracy alone decides."""
    y = np.asarray(y)
    cols = [[labels.index(lab) for lab in g.labels if lab in labels] for g in groups]
    if not groups or len(y) == 0 or sorted(j for c in cols for j in c) != list(range(len(labels))):
        return False
    return all(bool((y[:, c].sum(axis=1) == 1).all()) for c in cols)


def choose_rule(scores: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                configured: DecisionRule, groups: Sequence[LabelGroup] = (), min_support: int = 10,
                tune: bool = True) -> RuleChoice:
    """Tuned, shrunk or configured thresholds, each with or without group decoding: a candidate is adopted only
    when it beats the configured thresholds cross-fitted by more than the fold-to-fold noise (standard error of
    the per-fold gain) on the mean of micro-F1 and subset accuracy, without lowering micro-F1 beyond its noise.

    The rule the model ships with is evaluated as it is: a label is tuned in the final thresholds only if it
    was tunable (had `min_support` positives in the tuning rows) in every fold."""
    y = np.asarray(y)
    labels, default = list(configured.labels), np.asarray(configured.thresholds, dtype=np.float64)
    fold_thr: dict[str, list[np.ndarray]] = {CONFIGURED_THRESHOLDS: [default] * len(folds)}
    always = set(range(len(labels)))
    if tune:
        fold_thr.update({TUNED_THRESHOLDS: [], SHRUNK_THRESHOLDS: []})
        for (_, test), t in zip(folds, cross_fitted(scores, y, folds, labels, default, min_support)):
            positives = y[np.setdiff1d(np.arange(len(y)), test)].sum(axis=0)
            always &= {j for j in range(len(labels)) if positives[j] >= min_support}
            fold_thr[TUNED_THRESHOLDS].append(t.thresholds)
            fold_thr[SHRUNK_THRESHOLDS].append(shrink(t.thresholds, default, positives, min_support))
    candidates = [c for c in ALL if c.base in fold_thr and (groups or not c.grouped)]
    f1: dict[str, list[float]] = {}
    exact: dict[str, list[float]] = {}
    for c in candidates:
        rules = candidate_rules(configured, fold_thr[c.base], groups if c.grouped else ())
        per_fold = fold_metrics(y, decide_per_fold(scores, folds, rules), folds)
        f1[c.key] = [m["micro_f1"] for m in per_fold]
        exact[c.key] = [m["subset_accuracy"] for m in per_fold]
    final = tune_thresholds(scores, y, labels, default, min_support, only=always) if tune else Tuned(default)
    objective = SUBSET_OBJECTIVE if whole_label_sets(y, labels, groups) else MEAN_OBJECTIVE
    if len(candidates) == 1:
        return RuleChoice(CONFIGURED.key, configured, fold_thr, f1, exact, 0.0, 0.0, {},
                          "no candidate rule (tune_thresholds is false and there are no label groups)", objective)
    chosen, gain, noise, reason = _adopt(candidates, f1, exact, objective)
    shipped = {CONFIGURED_THRESHOLDS: default, TUNED_THRESHOLDS: final.thresholds,
               SHRUNK_THRESHOLDS: shrink(final.thresholds, default, y.sum(axis=0), min_support)}[chosen.base]
    notes = final.notes if chosen.base != CONFIGURED_THRESHOLDS else {}
    rule = configured.with_thresholds(shipped).with_groups(groups if chosen.grouped else ())
    return RuleChoice(chosen.key, rule, fold_thr, f1, exact, gain, noise, notes, reason, objective)


def _adopt(candidates: list[Candidate], f1: dict[str, list[float]], exact: dict[str, list[float]],
           objective_name: str = MEAN_OBJECTIVE) -> tuple[Candidate, float, float, str]:
    """The best candidate if it beats the configured rule by more than the noise, else the configured rule.

    The objective is the mean of micro-F1 (the tuning objective) and subset accuracy (exact label sets, what
    group decoding is for), per fold, and micro-F1 may not fall beyond its noise; where whole label sets are
    all that counts (SUBSET_OBJECTIVE) subset accuracy alone. Ties go to the simpler rule: fewer moved
    thresholds, then no groups."""
    whole = objective_name == SUBSET_OBJECTIVE

    def objective(c: Candidate) -> np.ndarray:
        return np.asarray(exact[c.key]) if whole else (np.asarray(f1[c.key]) + np.asarray(exact[c.key])) / 2

    best = max((c for c in candidates if c != CONFIGURED),
               key=lambda c: (round(float(objective(c).mean()), 6), tuple(-x for x in c.simplicity)))
    gain, noise = paired_gain(objective(CONFIGURED), objective(best))
    micro_gain, micro_noise = paired_gain(np.asarray(f1[CONFIGURED.key]), np.asarray(f1[best.key]))
    why = ("every title has exactly one label of each group, so only whole label sets count; " if whole else "")
    if gain > noise and gain > 0 and (whole or micro_gain >= -micro_noise):
        return best, gain, noise, (
            f"{why}{best.key} raises the cross-fitted {objective_name} by {gain:.4f} per fold, more than the "
            f"fold-to-fold noise ({noise:.4f}), and changes micro-F1 by {micro_gain:+.4f}")
    micro = "" if whole else f" (noise {micro_noise:.4f})"
    return CONFIGURED, gain, noise, (
        f"{why}the best candidate ({best.key}) changes the cross-fitted {objective_name} by {gain:+.4f} per fold "
        f"(noise {noise:.4f}) and micro-F1 by {micro_gain:+.4f}{micro}: the configured thresholds are kept")


def candidate_rules(configured: DecisionRule, fold_thresholds: list[np.ndarray],
                    groups: Sequence[LabelGroup] = ()) -> list[DecisionRule]:
    """One rule per fold: the configured structure with that fold's thresholds and these groups."""
    return [configured.with_thresholds(t).with_groups(groups) for t in fold_thresholds]


def paired_gain(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Mean per-fold gain and its standard error (the fold-to-fold noise of a paired comparison)."""
    diff = np.asarray(after) - np.asarray(before)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
