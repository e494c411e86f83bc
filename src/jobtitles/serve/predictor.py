"""Predictions for the API: TitleClassifier's scores and label sets (its own decide), plus whether each title
was cut to the model's max_length tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from jobtitles.inference import TitleClassifier


@dataclass
class Prediction:
    title: str
    labels: list[str]
    scores: dict[str, float]
    truncated: bool


class Predictor:
    def __init__(self, clf: TitleClassifier) -> None:
        self.clf = clf
        self.labels = list(clf.labels)
        # An ASCII title of n characters has at most n + 1 tokens (WordPiece, BPE and SentencePiece tokens each
        # cover at least one character; SentencePiece may add one word-start piece), plus the special tokens:
        # such titles cannot be cut, and only the others are tokenized again to find out.
        self._safe_chars = int(clf.max_length) - clf.tokenizer.num_special_tokens_to_add(pair=False) - 1

    def truncated(self, titles: Sequence[str]) -> list[bool]:
        """Per title: did it have more than max_length tokens (so the model saw only the first max_length)?"""
        flags = [False] * len(titles)
        check = [i for i, t in enumerate(titles) if not (t.isascii() and len(t) <= self._safe_chars)]
        if check:
            enc = self.clf.tokenizer([titles[i] for i in check], truncation=False, verbose=False)
            for i, ids in zip(check, enc["input_ids"]):
                flags[i] = len(ids) > self.clf.max_length
        return flags

    def scores(self, titles: Sequence[str]) -> np.ndarray:
        return self.clf.predict_scores(list(titles))

    def predictions(self, titles: Sequence[str], scores: np.ndarray) -> list[Prediction]:
        decided = self.clf.decide(scores)  # the classifier's own rule: thresholds, at-least-one, and what the lead adds
        return [Prediction(title=t, labels=[self.labels[j] for j in np.flatnonzero(row)],
                           scores={lab: round(float(s), 6) for lab, s in zip(self.labels, sc)}, truncated=cut)
                for t, row, sc, cut in zip(titles, decided, scores, self.truncated(titles))]

    def predict(self, titles: Sequence[str]) -> list[Prediction]:
        return self.predictions(titles, self.scores(titles))
