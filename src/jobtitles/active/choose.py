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

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.feature_extraction.text import TfidfVectorizer

SHORTLIST_FACTOR = 10  # titles clustered per pick: enough to choose from, few enough to embed and cluster quickly
MIN_SHORTLIST = 500
# k-means' time grows with titles x clusters: exact k-means on --n 10,000's shortlist (100,000 x 10,000) would run
# for hours, mini-batch k-means with two passes about 40 s; capped at 2,000 clusters, about 10 s
EXACT_KMEANS_WORK = 500_000  # titles x clusters up to which exact k-means runs (--n 200: about 2 s)
MAX_CLUSTERS = 2_000  # more picks than this go round the clusters: each one's second best, then third...


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


def cluster(embeddings: np.ndarray, values: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each title's cluster: k-means weighted by value (clusters gather where the value is); mini-batch k-means
    from random centres, two passes, where exact k-means would take long (above EXACT_KMEANS_WORK)."""
    if k <= 1:
        return np.zeros(len(values), dtype=np.int64)
    weight = np.maximum(values, 1e-9)
    if len(values) * k <= EXACT_KMEANS_WORK:
        model = KMeans(n_clusters=k, n_init=1, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters=k, init="random", n_init=1, max_iter=2, batch_size=2048,
                                random_state=seed)
    return model.fit(embeddings, sample_weight=weight).labels_


def visit_order(labels: np.ndarray, round_robin: bool) -> np.ndarray:
    """Shortlist positions (best first) in the order they are tried: the best of each cluster, then the rest by
    value or, with `round_robin` (fewer clusters than picks), each cluster's second best, then third..."""
    rank = np.zeros(len(labels), dtype=np.int64)
    seen: defaultdict[int, int] = defaultdict(int)
    for i, c in enumerate(labels.tolist()):
        rank[i] = seen[c]
        seen[c] += 1
    return np.lexsort((np.arange(len(labels)), rank if round_robin else np.minimum(rank, 1)))


def diverse_batch(values: np.ndarray, embeddings: np.ndarray, texts: NearDuplicates, n: int, seed: int,
                  near: float) -> tuple[list[int], int]:
    """`n` positions of the shortlist (whose `values` and `embeddings` are given, best first): the best title
    of each of `n` clusters (at most MAX_CLUSTERS), best first, skipping any text at least `near` similar to one
    already picked; the rest by value (or round the clusters) under the same rule.
    Returns the picks and how many had to be near-duplicates (a pool with too few different titles)."""
    n = min(n, len(values))
    k = min(n, len(np.unique(embeddings, axis=0)), MAX_CLUSTERS)
    picked: list[int] = []
    for i in visit_order(cluster(embeddings, values, k, seed), round_robin=k == MAX_CLUSTERS < n).tolist():
        if len(picked) == n:
            break
        if texts.similarity(i, picked) < near:
            picked.append(i)
    forced, chosen = 0, set(picked)  # a set: `in` on the list would be n x shortlist steps at --n 10,000
    for i in range(len(values)):
        if len(picked) == n:
            break
        if i not in chosen:
            picked.append(i)
            chosen.add(i)
            forced += 1
    return sorted(picked), forced
