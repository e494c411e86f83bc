"""The reference every transformer run is compared with: TF-IDF (word 1-2 + char_wb 2-5 grams) and one-vs-rest
logistic regression (C=20), fitted on exactly the same folds."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, make_pipeline

BASELINE_NAME = "TF-IDF word 1-2 + char_wb 2-5 grams, one-vs-rest logistic regression (C=20)"


def make_baseline(seed: int = 0):
    features = FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)),
    ])
    clf = OneVsRestClassifier(LogisticRegression(C=20.0, max_iter=2000, random_state=seed))
    return make_pipeline(features, clf)


def fit_baseline(titles, y: np.ndarray, seed: int = 0):
    """The baseline fitted on these titles (a fold's training split, or all rows for the final model)."""
    model = make_baseline(seed)
    with warnings.catch_warnings():
        # a label with no positive row in a training split is predicted constant; the report says so
        warnings.filterwarnings("ignore", message="Label not .* present in all training examples")
        return model.fit(np.asarray(titles, dtype=object), np.asarray(y).astype(int))


def baseline_scores(titles: list[str], y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                    seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities (n_rows, n_labels) of the baseline."""
    texts = np.asarray(titles, dtype=object)
    scores = np.zeros(y.shape, dtype=np.float64)
    for train, test in folds:
        scores[test] = fit_baseline(texts[train], y[train], seed).predict_proba(texts[test])
    return scores
