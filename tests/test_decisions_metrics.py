import numpy as np
import pytest

from conftest import decide

from jobtitles.selection.decisions import cross_fitted, threshold_vector, tune_thresholds
from jobtitles.core.errors import UserError
from jobtitles.train.losses import pos_weight
from jobtitles.core.metrics import mean_std, multilabel_metrics, per_label_metrics


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
    # fold 0's own rows want 0.30 (positives at 0.30, negatives at 0.10); fold 1's rows are separated at 0.5
    # already (positives 0.70, negatives 0.20) and keep it. Cross-fitted, fold 0 must get fold 1's choice and
    # fold 1 fold 0's; tuning on a fold's own rows, or on all rows, gives other thresholds.
    y = np.array([[1], [0]] * 20)
    scores = np.where(y == 1, 0.30, 0.10).astype(float)
    scores[20:] = np.where(y[20:] == 1, 0.70, 0.20)
    folds = [(np.arange(20, 40), np.arange(20)), (np.arange(20), np.arange(20, 40))]
    tuned = cross_fitted(scores, y, folds, ["x"], np.array([0.5]), 1)
    assert [t.thresholds.tolist() for t in tuned] == [[0.5], [0.3]]
    assert tune_thresholds(scores, y, ["x"], np.array([0.5]), 1).thresholds.tolist() == [0.3]  # all rows


def test_threshold_vector_rejects_unknown_labels():
    assert threshold_vector(["a", "b"], 0.5, {"b": 0.3}).tolist() == [0.5, 0.3]
    with pytest.raises(UserError, match=r"unknown labels \['c'\]"):
        threshold_vector(["a", "b"], 0.5, {"c": 0.3})


def test_pos_weight_values():
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]])  # positives 3, 1, 0 of 4
    assert pos_weight(y, "none") is None
    assert pos_weight(y, "inverse_frequency").tolist() == pytest.approx([1 / 3, 3.0, 1.0])
    assert pos_weight(y, "sqrt_inverse_frequency").tolist() == pytest.approx([np.sqrt(1 / 3), np.sqrt(3), 1.0])


def test_macro_f1_scores_only_labels_present_in_truth_or_prediction():
    y_true = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    y_pred = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]])
    # label c is in neither: macro-F1 averages a (F1 0.8) and b (F1 1.0) only, not a 0 (or 1) for c
    assert multilabel_metrics(y_true, y_pred)["macro_f1"] == pytest.approx((0.8 + 1.0) / 2)
    y_pred2 = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]])  # a false positive on c: c now counts, with F1 0
    assert multilabel_metrics(y_true, y_pred2)["macro_f1"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
