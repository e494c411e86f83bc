"""Predictions for the API: TitleClassifier's scores and label sets (its own decide), plus whether each title
was cut (to MAX_TITLE_CHARS characters or the model's max_length tokens)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

from jobtitles.predict.inference import Prediction, TitleClassifier  # Prediction: the API's results too


class RecentTitles:
    """The answers for the most recently asked titles, at most `size` of them (least recently used go first):
    a server asked for "Software Engineer" all day scores it once. Keyed by the exact title, so a hit is the
    answer scoring would give. (An OrderedDict: the stdlib's lru_cache memoises one call at a time, and a
    model call scores a batch of titles together.)"""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self.lock = threading.Lock()  # model workers are threads; each batch reads and writes the map
        self.hits = self.misses = 0

    def lookup(self, titles: Sequence[str]) -> list[tuple[np.ndarray, bool] | None]:
        with self.lock:
            found = []
            for title in titles:
                item = self.items.get(title)
                if item is not None:
                    self.items.move_to_end(title)
                found.append(item)
            hits = sum(f is not None for f in found)
            self.hits, self.misses = self.hits + hits, self.misses + len(found) - hits
            return found

    def store(self, titles: Sequence[str], scores: np.ndarray, truncated: Sequence[bool]) -> None:
        with self.lock:
            for title, row, cut in zip(titles, scores, truncated):
                self.items[title] = (row, cut)
                self.items.move_to_end(title)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class Predictor:
    def __init__(self, clf: TitleClassifier, cache: RecentTitles | None = None) -> None:
        self.clf = clf
        self.labels = list(clf.labels)
        self.cache = cache

    def scores(self, titles: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Scores and, per title, whether the model saw only a part of it (TitleClassifier's one tokenization);
        titles answered recently come from the cache, the others are scored together."""
        titles = list(titles)
        if self.cache is None or not titles:
            return self.clf.score_titles(titles)
        found = self.cache.lookup(titles)
        missing = [i for i, f in enumerate(found) if f is None]
        scores = np.zeros((len(titles), len(self.labels)), dtype=np.float32)
        truncated = [False] * len(titles)
        if missing:
            new_scores, new_cut = self.clf.score_titles([titles[i] for i in missing])
            self.cache.store([titles[i] for i in missing], new_scores, new_cut)
            for k, i in enumerate(missing):
                found[i] = (new_scores[k], new_cut[k])
        for i, (row, cut) in enumerate(found):
            scores[i], truncated[i] = row, cut
        return scores, truncated

    def predictions(self, titles: Sequence[str], scored: tuple[np.ndarray, list[bool]]) -> list[Prediction]:
        scores, truncated = scored
        decided = self.clf.decide(scores)  # the classifier's own rule, as every backend applies it
        return [Prediction(title=t, labels=[self.labels[j] for j in np.flatnonzero(row)],
                           scores={lab: round(float(s), 6) for lab, s in zip(self.labels, sc)}, truncated=cut)
                for t, row, sc, cut in zip(titles, decided, scores, truncated)]

    def predict(self, titles: Sequence[str]) -> list[Prediction]:
        return self.predictions(titles, self.scores(titles))
