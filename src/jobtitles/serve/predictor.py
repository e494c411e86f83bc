"""Predictions for the API: TitleClassifier's scores and label sets (its own decide), plus whether each title
was cut (to MAX_TITLE_CHARS characters or the model's max_length tokens)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jobtitles.predict.inference import Prediction, TitleClassifier  # Prediction: the API's results too


class Predictor:
    def __init__(self, clf: TitleClassifier) -> None:
        self.clf = clf
        self.labels = list(clf.labels)

    def scores(self, titles: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Scores and, per title, whether the model saw only a part of it (TitleClassifier's one tokenization;
        its cache of recent titles, shared by the workers, answers titles asked before)."""
        return self.clf.score_titles(list(titles))

    def predictions(self, titles: Sequence[str], scored: tuple[np.ndarray, list[bool]]) -> list[Prediction]:
        scores, truncated = scored
        decided = self.clf.decide(scores)  # the classifier's own rule, as every backend applies it
        return [Prediction(title=t, labels=[self.labels[j] for j in np.flatnonzero(row)],
                           scores={lab: round(float(s), 6) for lab, s in zip(self.labels, sc)}, truncated=cut)
                for t, row, sc, cut in zip(titles, decided, scores, truncated)]

    def predict(self, titles: Sequence[str]) -> list[Prediction]:
        return self.predictions(titles, self.scores(titles))
