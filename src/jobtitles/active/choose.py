"""Which titles to label next: a value per title (how unsure the model is, times how often the title occurs),
then a batch that is valuable and diverse (clusters of the encoder's embeddings, one pick per cluster, never two
near-duplicate texts). Pure functions of arrays, so each part is tested on its own.

Uncertainty is the largest of:
- closeness to a label's saved threshold: 1 at the threshold, 0 at a score of 0 or 1;
- closeness between the two best labels of an exclusive group (1 - their score gap);
and counts double where the transformer and the TF-IDF baseline decide different label sets (the two see the
title differently: a label error or a gap in the training data). Frequency weighs by 1 + ln(count): a title
10,000 times in the pool outweighs one seen once, without frequent easy titles crowding out every unsure one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer

SHORTLIST_FACTOR = 10  # titles clustered per pick: enough to choose from, few enough to embed and cluster quickly
MIN_SHORTLIST = 500


@dataclass(frozen=True)
class Uncertainty:
    value: np.ndarray  # (n,) in [0, 1]
    label: np.ndarray  # (n,) the label closest to its threshold
    group_pair: np.ndarray  # (n, 2) the closest two labels of a group (-1 without groups)
    threshold_part: np.ndarray  # (n,)
    group_part: np.ndarray  # (n,)


def threshold_closeness(scores: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per title, the closeness to the nearest threshold (1 on it, 0 at 0 or 1) and that label."""
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-6, 1 - 1e-6)
    span = np.where(scores < t, t, 1 - t)
    close = 1 - np.abs(scores - t) / span
    label = np.argmax(close, axis=1)
    return np.clip(close[np.arange(len(scores)), label], 0, 1), label


def group_closeness(scores: np.ndarray, groups: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per title, 1 - the gap between the two best labels of its least decided group, and those two labels."""
    n = len(scores)
    best = np.zeros(n)
    pair = np.full((n, 2), -1, dtype=np.int64)
    for cols in groups:
        if len(cols) < 2:
            continue
        part = scores[:, cols]
        top = np.argsort(-part, axis=1, kind="stable")[:, :2]
        rows = np.arange(n)
        close = 1 - (part[rows, top[:, 0]] - part[rows, top[:, 1]])
        better = close > best
        best = np.where(better, close, best)
        pair[better] = np.asarray(cols)[top[better]]
    return np.clip(best, 0, 1), pair


def uncertainty(scores: np.ndarray, thresholds: np.ndarray, groups: Sequence[np.ndarray]) -> Uncertainty:
    near, label = threshold_closeness(np.asarray(scores, dtype=np.float64), thresholds)
    gap, pair = group_closeness(np.asarray(scores, dtype=np.float64), groups)
    return Uncertainty(np.maximum(near, gap), label, pair, near, gap)


def frequency_weight(counts: np.ndarray) -> np.ndarray:
    return 1 + np.log(np.maximum(np.asarray(counts, dtype=np.float64), 1))


def title_values(unsure: np.ndarray | None, disagree: np.ndarray | None, counts: np.ndarray) -> np.ndarray:
    """What labelling each title is worth: uncertainty (x2 where the two models disagree) x frequency weight;
    without a model (cold start) the frequency weight alone."""
    value = frequency_weight(counts)
    if unsure is not None:
        value = value * unsure * (1 + (disagree if disagree is not None else 0))
    return value


def shortlist(values: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The most valuable titles, best first; ties in an order drawn from `seed` (not the file's order, which
    may be sorted: a cold start's equal counts would otherwise all come from the pool's first rows)."""
    size = min(len(values), max(SHORTLIST_FACTOR * n, MIN_SHORTLIST))
    ties = np.random.default_rng(seed).permutation(len(values))
    return np.lexsort((ties, -np.asarray(values, dtype=np.float64)))[:size]


def near_duplicates(titles: Sequence[str]) -> "NearDuplicates":
    """Texts compared by character n-grams: "Sales Manager" and "Sales Manager - Remote" are near-duplicates
    whatever a model makes of them."""
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True, sublinear_tf=True)
    return NearDuplicates(vec.fit_transform(list(titles)))


@dataclass(frozen=True)
class NearDuplicates:
    matrix: object  # sparse, rows L2-normalised

    def similarity(self, i: int, others: list[int]) -> float:
        if not others:
            return 0.0
        return float((self.matrix[others] @ self.matrix[i].T).max())


def diverse_batch(values: np.ndarray, embeddings: np.ndarray, texts: NearDuplicates, n: int, seed: int,
                  near: float) -> tuple[list[int], int]:
    """`n` positions of the shortlist (whose `values` and `embeddings` are given, best first): the best title
    of each of `n` clusters (k-means weighted by value, so clusters gather where the value is), best first,
    skipping any text at least `near` similar to one already picked; the rest by value under the same rule.
    Returns the picks and how many had to be near-duplicates (a pool with too few different titles)."""
    n = min(n, len(values))
    k = min(n, len(np.unique(embeddings, axis=0)))
    labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(
        embeddings, sample_weight=np.maximum(values, 1e-9)).labels_ if k > 1 else np.zeros(len(values), int)
    heads = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]  # best of each (shortlist order)
    picked: list[int] = []
    head_set = set(heads)
    for i in sorted(heads) + [i for i in range(len(values)) if i not in head_set]:
        if len(picked) == n:
            break
        if texts.similarity(i, picked) < near:
            picked.append(i)
    forced = 0
    for i in range(len(values)):
        if len(picked) == n:
            break
        if i not in picked:
            picked.append(i)
            forced += 1
    return sorted(picked), forced
