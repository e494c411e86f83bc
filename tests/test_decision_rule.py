"""The shipped decision rule: exclusive empty label, thresholds adopted only when they pay, and the rule the
model carries is the rule the cross-fitted figures measured."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import decide, make_rule

from jobtitles.selection.decisions import choose_rule, shrink

DEFAULT = np.array([0.5, 0.5])


def test_empty_label_is_never_decided_with_another_one():
    # columns: Manager, Not Required (exclusive), Owner
    scores = np.array([
        [0.90, 0.60, 0.10],  # both pass, Manager higher -> Manager only
        [0.55, 0.80, 0.20],  # both pass, Not Required higher -> Not Required only
        [0.70, 0.75, 0.65],  # Not Required beats every passing label -> alone
        [0.10, 0.20, 0.30],  # nothing passes: at-least-one takes the top label (Owner)
        [0.10, 0.40, 0.20],  # nothing passes: top label is Not Required -> alone
    ])
    got = decide(scores, 0.5, at_least_one=True, exclusive=1)
    assert got.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]
    assert decide(scores, 0.5, at_least_one=True).tolist()[0] == [1, 1, 0]  # without the rule: both


def two_folds(a: list[tuple[float, int]], b: list[tuple[float, int]]):
    rows = a + b
    scores = np.array([[s, 0.9 if i % 2 else 0.1] for i, (s, _) in enumerate(rows)])
    y = np.array([[t, i % 2] for i, (_, t) in enumerate(rows)])
    folds = [(np.arange(len(a), len(rows)), np.arange(len(a))), (np.arange(len(a)), np.arange(len(a), len(rows)))]
    return scores, y, folds


def test_thresholds_that_overfit_are_not_adopted():
    # Fold A's rows pull label x's threshold down to 0.40 (its positives at 0.40); on fold B that threshold
    # lets B's negatives at 0.42 through, while 0.5 (configured) is perfect there. Tuning hurts out of fold.
    fold_a = [(0.9, 1)] * 10 + [(0.40, 1)] * 5 + [(0.1, 0)] * 10 + [(0.35, 0)] * 5
    fold_b = [(0.9, 1)] * 10 + [(0.60, 1)] * 5 + [(0.1, 0)] * 10 + [(0.42, 0)] * 5
    scores, y, folds = two_folds(fold_a, fold_b)
    rule = choose_rule(scores, y, folds, make_rule(["x", "y"], DEFAULT, False), min_support=1)
    assert rule.fold_thresholds["tuned"][1][0] == pytest.approx(0.40)  # fold B is scored with A's tuning
    assert np.mean(rule.fold_micro_f1["tuned"]) < np.mean(rule.fold_micro_f1["configured"])
    assert rule.chosen == "configured" and list(rule.rule.thresholds) == [0.5, 0.5]
    assert "configured thresholds are kept" in rule.reason


def test_thresholds_that_help_in_every_fold_are_adopted():
    fold = [(0.35, 1)] * 10 + [(0.1, 0)] * 10
    scores, y, folds = two_folds(fold, fold)
    rule = choose_rule(scores, y, folds, make_rule(["x", "y"], DEFAULT, False), min_support=1)
    assert rule.chosen == "tuned" and rule.rule.thresholds[0] == pytest.approx(0.35)
    assert rule.fold_micro_f1["tuned"] == [1.0, 1.0] and rule.gain > rule.noise


def test_shipped_thresholds_are_the_evaluated_ones():
    # label x helps everywhere; label z has 10 positives in all, 5 in each fold's tuning rows: with
    # min_support 10 it was never tuned inside a fold, so the shipped model must not tune it either.
    n = 40
    scores = np.zeros((n, 2))
    y = np.zeros((n, 2), dtype=int)
    y[:, 0] = np.arange(n) % 2
    scores[:, 0] = np.where(y[:, 0] == 1, 0.35, 0.1)
    z_pos = [0, 2, 4, 6, 8, 20, 22, 24, 26, 28]
    y[z_pos, 1] = 1
    scores[:, 1] = np.where(y[:, 1] == 1, 0.3, 0.05)
    folds = [(np.arange(20, 40), np.arange(20)), (np.arange(20), np.arange(20, 40))]
    rule = choose_rule(scores, y, folds, make_rule(["x", "z"], DEFAULT, False), min_support=10)
    assert rule.chosen in ("tuned", "shrunk")
    assert [t[1] for t in rule.fold_thresholds["tuned"]] == [0.5, 0.5]
    assert rule.rule.thresholds[1] == 0.5  # all rows have 10 positives, but the folds never evaluated tuning it
    assert "could not be evaluated" in rule.notes["z"]


def test_shrink_pulls_toward_the_default_by_support():
    out = shrink(np.array([0.2, 0.2]), np.array([0.5, 0.5]), np.array([10, 990]), strength=10)
    assert out.tolist() == [0.35, 0.2]
