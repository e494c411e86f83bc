"""Per-label choice of where a label's score comes from: the transformer, the TF-IDF baseline, or their mean.

A label with a handful of rows (Owner: 4 of 2,240) is often learned by the TF-IDF + logistic regression baseline
from a single word the transformer never picks up in a few hundred steps. The run already has both models'
out-of-fold scores on the same folds, so the choice costs no training: for each fold, every label takes the
source with the best F1 on the other folds' rows (cross-fitted, as thresholds), and the per-label rule is adopted
only when it raises cross-fitted macro-F1 by more than the fold-to-fold noise without lowering micro-F1 by more
than its noise. The final model keeps the sources chosen on all out-of-fold rows, and its folder then holds the
baseline fitted on all rows (skops format: no pickle) so that every backend computes the same scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobtitles.core.decision_rule import DecisionRule
from jobtitles.selection.decisions import decide_per_fold, fold_metrics, paired_gain
from jobtitles.core.metrics import per_label_metrics
from jobtitles.core.scoring import SOURCES, combine

def best_sources(transformer: np.ndarray, baseline: np.ndarray, y: np.ndarray, labels: list[str],
                 thresholds: np.ndarray, transformer_only: frozenset[int] = frozenset()) -> list[str]:
    """Each label's source with the highest F1 of that label at its threshold; ties keep the transformer, and
    so do the labels in `transformer_only`."""
    f1 = {s: per_label_metrics(y, combine(transformer, baseline, [s] * len(labels)) >= thresholds, labels)
          for s in SOURCES}
    return ["transformer" if j in transformer_only else max(SOURCES, key=lambda s: (f1[s][lab]["f1"], s == "transformer"))
            for j, lab in enumerate(labels)]


@dataclass
class SourceChoice:
    adopted: bool
    sources: list[str]  # per label, for the final model ("transformer" everywhere when not adopted)
    fold_sources: list[list[str]]  # per fold, chosen on the other folds' rows
    scores: np.ndarray  # out-of-fold scores under the cross-fitted choice (the transformer's when not adopted)
    fold_macro_f1: dict[str, list[float]]  # "transformer" / "per_label" -> per fold
    fold_micro_f1: dict[str, list[float]]
    reason: str


def choose_sources(transformer: np.ndarray, baseline: np.ndarray, y: np.ndarray,
                   folds: list[tuple[np.ndarray, np.ndarray]], rule: DecisionRule,
                   transformer_only: frozenset[int] = frozenset()) -> SourceChoice:
    """`transformer_only`: labels whose score must stay the transformer's (softmax-trained groups, whose scores
    sum to one only as a whole)."""
    labels, thresholds = list(rule.labels), np.asarray(rule.thresholds, dtype=np.float64)
    combined = np.zeros_like(transformer, dtype=np.float64)
    fold_sources = []
    for _, test in folds:
        others = np.setdiff1d(np.arange(len(y)), test)
        chosen = best_sources(transformer[others], baseline[others], y[others], labels, thresholds, transformer_only)
        fold_sources.append(chosen)
        combined[test] = combine(transformer[test], baseline[test], chosen)

    per_fold = {name: fold_metrics(y, decide_per_fold(scores, folds, rule), folds)
                for name, scores in (("transformer", transformer), ("per_label", combined))}

    def metric(key: str) -> dict[str, list[float]]:
        return {name: [m[key] for m in folds_] for name, folds_ in per_fold.items()}

    macro, micro, exact = metric("macro_f1"), metric("micro_f1"), metric("subset_accuracy")
    macro_gain, macro_noise = paired_gain(macro["transformer"], macro["per_label"])
    micro_gain, micro_noise = paired_gain(micro["transformer"], micro["per_label"])
    final = best_sources(transformer, baseline, y, labels, thresholds, transformer_only)
    # The per-fold choice is cross-fitted, so the mean gain is an honest estimate; a label of 4 rows makes the
    # per-fold macro-F1 too noisy for a noise margin, so the guard is on the frequent labels' side instead:
    # adopted when macro-F1 rises and neither micro-F1 nor subset accuracy falls beyond its fold-to-fold noise.
    exact_gain, exact_noise = paired_gain(exact["transformer"], exact["per_label"])
    adopted = macro_gain > 0 and micro_gain >= -micro_noise and exact_gain >= -exact_noise
    others = {lab: s for lab, s in zip(labels, final) if s != "transformer"}
    if adopted and not others:  # every label ends up on the transformer: nothing to ship
        adopted = False
    if adopted:
        reason = (f"per-label sources raise cross-fitted macro-F1 by {macro_gain:.4f} per fold (noise "
                  f"{macro_noise:.4f}); micro-F1 changes by {micro_gain:+.4f} (noise {micro_noise:.4f}), subset "
                  f"accuracy by {exact_gain:+.4f} (noise {exact_noise:.4f}); labels not on the transformer: {others}")
    else:
        reason = (f"per-label sources change cross-fitted macro-F1 by {macro_gain:+.4f} (noise {macro_noise:.4f}), "
                  f"micro-F1 by {micro_gain:+.4f} (noise {micro_noise:.4f}) and subset accuracy by {exact_gain:+.4f} "
                  f"(noise {exact_noise:.4f}): every label keeps the transformer")
    return SourceChoice(adopted, final if adopted else ["transformer"] * len(labels), fold_sources,
                        combined if adopted else np.asarray(transformer, dtype=np.float64), macro, micro, reason)
