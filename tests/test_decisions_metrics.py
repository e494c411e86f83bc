import numpy as np
import pytest

from jobtitles.decisions import cross_fitted, decide, threshold_vector, tune_thresholds
from jobtitles.errors import UserError
from jobtitles.losses import pos_weight
from jobtitles.metrics import mean_std, multilabel_metrics, per_label_metrics


def test_metric_arithmetic_on_hand_made_example():
    y_true = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 1]])
    m = multilabel_metrics(y_true, y_pred)
    # TP = 1 + 1 + 2 + 1 = 5, FP = 1 (row 3, label a), FN = 1 (row 1, label c)
    assert m["micro_f1"] == pytest.approx(2 * 5 / (2 * 5 + 1 + 1))
    assert m["subset_accuracy"] == pytest.approx(2 / 4)  # rows 0 and 2 match exactly
    assert m["hamming_loss"] == pytest.approx(2 / 12)
    # samples-F1: row F1s 1, 2/3, 1, 2/3
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3 + 1 + 2 / 3) / 4)
    per = per_label_metrics(y_true, y_pred, ["a", "b", "c"])
    assert per["a"] == {"support": 2, "precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8)}
    assert per["c"]["recall"] == 0.5


def test_mean_std_uses_sample_std():
    s = mean_std([{"x": 1.0}, {"x": 3.0}])
    assert s["x"] == {"mean": 2.0, "std": pytest.approx(np.sqrt(2))}


def test_at_least_one_gives_top_label_only_when_nothing_passes():
    scores = np.array([[0.2, 0.4, 0.1], [0.9, 0.6, 0.1], [0.1, 0.1, 0.3]])
    assert decide(scores, 0.5, at_least_one=False).tolist() == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert decide(scores, 0.5, at_least_one=True).tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert decide(scores, np.array([0.95, 0.5, 0.25]), at_least_one=False).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_tuning_finds_known_optimum_and_respects_min_support():
    # label 0: positives score 0.30-0.38, negatives 0.05-0.20 -> any threshold in (0.20, 0.30] is perfect;
    # the tie is broken towards the default 0.5, i.e. 0.30.
    pos = np.linspace(0.30, 0.38, 20)
    neg = np.linspace(0.05, 0.20, 30)
    scores = np.zeros((50, 2))
    scores[:, 0] = np.concatenate([pos, neg])
    y = np.zeros((50, 2), dtype=int)
    y[:20, 0] = 1
    scores[:, 1] = 0.6  # label 1: 2 positives only -> keeps the default
    y[:2, 1] = 1
    tuned = tune_thresholds(scores, y, ["a", "b"], np.array([0.5, 0.5]), min_support=5)
    assert tuned.thresholds.tolist() == [0.30, 0.5]
    assert tuned.notes == {"b": "kept 0.50: 2 positives < tune_min_support=5"}
    f1_tuned = per_label_metrics(y, decide(scores, tuned.thresholds, False), ["a", "b"])["a"]["f1"]
    f1_default = per_label_metrics(y, decide(scores, 0.5, False), ["a", "b"])["a"]["f1"]
    assert (f1_tuned, f1_default) == (1.0, 0.0)


def test_cross_fitted_thresholds_never_see_their_fold():
    rng = np.random.default_rng(0)
    y = (rng.random((40, 1)) < 0.5).astype(int)
    scores = np.where(y == 1, 0.7, 0.2).astype(float)
    folds = [(np.arange(20, 40), np.arange(20)), (np.arange(20), np.arange(20, 40))]
    # poison fold 0's scores: if its own rows were used, its threshold would move
    poisoned = scores.copy()
    poisoned[:20] = 0.99
    a = cross_fitted(poisoned, y, folds, ["x"], np.array([0.5]), 1)
    b = cross_fitted(scores, y, folds, ["x"], np.array([0.5]), 1)
    assert a[0].thresholds.tolist() == b[0].thresholds.tolist()


def test_threshold_vector_rejects_unknown_labels():
    assert threshold_vector(["a", "b"], 0.5, {"b": 0.3}).tolist() == [0.5, 0.3]
    with pytest.raises(UserError, match=r"unknown labels \['c'\]"):
        threshold_vector(["a", "b"], 0.5, {"c": 0.3})


def test_pos_weight_values():
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]])  # positives 3, 1, 0 of 4
    assert pos_weight(y, "none") is None
    assert pos_weight(y, "inverse_frequency").tolist() == pytest.approx([1 / 3, 3.0, 1.0])
    assert pos_weight(y, "sqrt_inverse_frequency").tolist() == pytest.approx([np.sqrt(1 / 3), np.sqrt(3), 1.0])
