"""Per-label choice of where a label's score comes from: the transformer, the TF-IDF baseline, or their mean.

A label with a handful of rows (Owner: 4 of 2,240) is often learned by the TF-IDF + logistic regression baseline
from a single word the transformer never picks up in a few hundred steps. The run already has both models'
out-of-fold scores on the same folds, so the choice costs no training: for each fold, every label takes the
source whose F1 on that label beats the transformer's by more than its fold-to-fold noise on the other folds'
rows (cross-fitted, as thresholds; label by label, never as a package), and the rule is shipped only when it
raises cross-fitted macro-F1 without lowering micro-F1 or subset accuracy by more than their noise. The final
model keeps the sources chosen the same way on all folds, and its folder then holds the baseline fitted on all
rows (skops format: no pickle) so that every backend computes the same scores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from jobtitles.core.decision_rule import DecisionRule
from jobtitles.selection.decisions import decide_per_fold, fold_metrics, paired_gain
from jobtitles.core.scoring import SOURCES, combine

def fold_label_f1(transformer: np.ndarray, baseline: np.ndarray, y: np.ndarray, thresholds: np.ndarray,
                  tests: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per source, each label's F1 at its threshold on each of the `tests` row sets: (n_sets, n_labels)."""
    n_labels = y.shape[1]
    out = {}
    for source in SOURCES:
        pred = (combine(transformer, baseline, [source] * n_labels) >= thresholds).astype(int)
        out[source] = np.array([f1_score(np.asarray(y[t]).astype(int), pred[t], average=None, zero_division=0,
                                         labels=list(range(n_labels))) for t in tests])
    return out


@dataclass(frozen=True)
class LabelSource:
    source: str
    gain: float  # mean per-fold F1 gain of the label over the transformer's (0 for the transformer)
    noise: float  # its fold-to-fold standard error


def best_sources(f1: dict[str, np.ndarray], n_labels: int,
                 transformer_only: frozenset[int] = frozenset()) -> list[LabelSource]:
    """Each label's source, judged label by label on per-fold F1 rows `f1` (fold_label_f1 on the row sets that
    may choose): a label leaves the transformer only for a source whose per-fold F1 gain on that label is larger
    than its fold-to-fold noise (the largest such gain wins); the labels in `transformer_only` always keep it.
    With a single row set (a 2-fold run's per-fold choice) there is no fold-to-fold noise: any gain counts, and
    the rule's reason says so."""
    out = []
    for j in range(n_labels):
        best = LabelSource("transformer", 0.0, 0.0)
        for source in SOURCES:
            if source == "transformer" or j in transformer_only:
                continue
            gain, noise = paired_gain(f1["transformer"][:, j], f1[source][:, j])
            if gain > noise and gain > best.gain:
                best = LabelSource(source, gain, noise)
        out.append(best)
    return out


@dataclass
class SourceChoice:
    adopted: bool
    sources: list[str]  # per label, for the final model ("transformer" everywhere when not adopted)
    fold_sources: list[list[str]]  # per fold, chosen on the other folds' rows
    scores: np.ndarray  # out-of-fold scores under the cross-fitted choice (the transformer's when not adopted)
    fold_macro_f1: dict[str, list[float]]  # "transformer" / "per_label" -> per fold
    fold_micro_f1: dict[str, list[float]]
    reason: str
    not_applied: bool = False  # the rule adopted sources, score_sources: transformer did not apply them


    def declined(self, transformer: np.ndarray) -> "SourceChoice":
        """The choice as measured, not applied (score_sources: transformer): every label keeps the transformer, and
        the reason says what the per-label rule would have changed."""
        if not self.adopted:
            return self
        return dataclasses.replace(
            self, adopted=False, not_applied=True, sources=["transformer"] * len(self.sources),
            scores=np.asarray(transformer, dtype=np.float64),
            reason=f"score_sources: transformer keeps every label on the transformer; with score_sources: auto, "
                   f"{self.reason}")


def choose_sources(transformer: np.ndarray, baseline: np.ndarray, y: np.ndarray,
                   folds: list[tuple[np.ndarray, np.ndarray]], rule: DecisionRule,
                   transformer_only: frozenset[int] = frozenset()) -> SourceChoice:
    """`transformer_only`: labels whose score must stay the transformer's (softmax-trained groups, whose scores
    sum to one only as a whole)."""
    labels, thresholds = list(rule.labels), np.asarray(rule.thresholds, dtype=np.float64)
    combined = np.zeros_like(transformer, dtype=np.float64)
    fold_sources = []
    tests = [test for _, test in folds]
    f1 = fold_label_f1(transformer, baseline, y, thresholds, tests)  # (fold, label) per source, computed once
    for k, test in enumerate(tests):
        # chosen on the other folds' test rows only (cross-fitted): this fold's rows never choose its sources
        others = {source: np.delete(per_fold, k, axis=0) for source, per_fold in f1.items()}
        chosen = [c.source for c in best_sources(others, len(labels), transformer_only)]
        fold_sources.append(chosen)
        combined[test] = combine(transformer[test], baseline[test], chosen)

    per_fold = {name: fold_metrics(y, decide_per_fold(scores, folds, rule), folds)
                for name, scores in (("transformer", transformer), ("per_label", combined))}

    def metric(key: str) -> dict[str, list[float]]:
        return {name: [m[key] for m in folds_] for name, folds_ in per_fold.items()}

    macro, micro, exact = metric("macro_f1"), metric("micro_f1"), metric("subset_accuracy")
    macro_gain, macro_noise = paired_gain(macro["transformer"], macro["per_label"])
    micro_gain, micro_noise = paired_gain(micro["transformer"], micro["per_label"])
    final_choice = best_sources(f1, len(labels), transformer_only)
    final = [c.source for c in final_choice]
    # The per-fold choice is cross-fitted, so the mean gain is an honest estimate; on top of each label's own
    # margin the rule as a whole must raise macro-F1 without costing micro-F1 or subset accuracy beyond noise.
    exact_gain, exact_noise = paired_gain(exact["transformer"], exact["per_label"])
    adopted = macro_gain > 0 and micro_gain >= -micro_noise and exact_gain >= -exact_noise
    others = {lab: f"{c.source} (F1 {c.gain:+.3f} per fold, noise {c.noise:.3f})"
              for lab, c in zip(labels, final_choice) if c.source != "transformer"}
    if adopted and not others:  # every label ends up on the transformer: nothing to ship
        adopted = False
    few = (f" (with {len(folds)} folds each fold's choice is judged on one other fold, which gives no noise "
           f"margin per label: any gain counts)") if len(folds) < 3 else ""
    if adopted:
        reason = (f"per-label sources raise cross-fitted macro-F1 by {macro_gain:.4f} per fold (noise "
                  f"{macro_noise:.4f}); micro-F1 changes by {micro_gain:+.4f} (noise {micro_noise:.4f}), subset "
                  f"accuracy by {exact_gain:+.4f} (noise {exact_noise:.4f}); labels not on the transformer: {others}{few}")
    else:
        reason = (f"per-label sources change cross-fitted macro-F1 by {macro_gain:+.4f} (noise {macro_noise:.4f}), "
                  f"micro-F1 by {micro_gain:+.4f} (noise {micro_noise:.4f}) and subset accuracy by {exact_gain:+.4f} "
                  f"(noise {exact_noise:.4f}): every label keeps the transformer")
    return SourceChoice(adopted, final if adopted else ["transformer"] * len(labels), fold_sources,
                        combined if adopted else np.asarray(transformer, dtype=np.float64), macro, micro, reason)
