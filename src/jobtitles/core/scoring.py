"""How a model folder turns logits into per-label scores: a sigmoid per label or a softmax within the groups
trained with one (`group_loss: softmax`), and for the labels the run's cross-fitted choice sent elsewhere, the
TF-IDF baseline's score or the mean of both. One frozen value, saved in and read back from config.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from jobtitles.core.activations import scores_from_logits
from jobtitles.core.decision_rule import group_columns, groups_from_config
from jobtitles.core.errors import UserError
from jobtitles.core.label_groups import EXACTLY_ONE, LabelGroup

SOFTMAX_GROUPS_KEY = "score_softmax_groups"  # groups trained with a softmax (group_loss: softmax): scores sum to 1
SOURCES_KEY = "decision_score_sources"  # {label: "baseline" | "blend"} for labels not scored by the transformer
SOURCES = ("transformer", "baseline", "blend")


def source_list(labels: Sequence[str], per_label: dict[str, str]) -> list[str]:
    """Each label's source, in label order, from the saved mapping of the labels not on the transformer."""
    return [per_label.get(lab, "transformer") for lab in labels]


def combine(transformer: np.ndarray, baseline: np.ndarray | None, sources: Sequence[str]) -> np.ndarray:
    """Scores with each label's column taken from its source (baseline None: transformer only)."""
    out = np.array(transformer, dtype=np.float64, copy=True)
    if baseline is None:
        return out
    for j, source in enumerate(sources):
        if source == "baseline":
            out[:, j] = baseline[:, j]
        elif source == "blend":
            out[:, j] = (transformer[:, j] + baseline[:, j]) / 2
    return out


@dataclass(frozen=True)
class Scoring:
    labels: tuple[str, ...]
    softmax_groups: tuple[LabelGroup, ...] = ()
    sources: tuple[str, ...] = ()  # per label in label order; empty: every label on the transformer

    @property
    def off_transformer(self) -> dict[str, str]:
        """The labels not scored by the transformer alone, and their source."""
        return {lab: s for lab, s in zip(self.labels, self.sources) if s != "transformer"}

    @property
    def needs_baseline(self) -> bool:
        return bool(self.off_transformer)

    def transformer_scores(self, logits: np.ndarray) -> np.ndarray:
        groups = [(group_columns(g, self.labels), g.kind == EXACTLY_ONE) for g in self.softmax_groups]
        return scores_from_logits(logits, groups or None)

    def combine(self, transformer: np.ndarray, baseline: np.ndarray | None) -> np.ndarray:
        return combine(transformer, baseline, self.sources) if self.needs_baseline else transformer

    def to_config(self) -> dict[str, Any]:
        return {SOURCES_KEY: self.off_transformer,
                SOFTMAX_GROUPS_KEY: [g.to_json() for g in self.softmax_groups] or None}

    @staticmethod
    def from_config(cfg: dict[str, Any], labels: Sequence[str], where: str) -> "Scoring":
        labels = tuple(labels)
        softmax = groups_from_config(cfg.get(SOFTMAX_GROUPS_KEY), labels, where, SOFTMAX_GROUPS_KEY)
        saved = cfg.get(SOURCES_KEY)
        saved = {} if saved is None else saved
        if not isinstance(saved, dict):
            raise UserError(f"{where}: {SOURCES_KEY} must be a mapping from label to one of {list(SOURCES)}, "
                            f"found {type(saved).__name__}; re-save the model with train.py")
        for label, source in saved.items():
            if label not in labels or source not in SOURCES:
                raise UserError(f"{where}: {SOURCES_KEY} maps {label!r} to {source!r:.100}; expected labels of the "
                                f"model {list(labels)} and sources {list(SOURCES)}: re-save the model with train.py")
        in_softmax = {lab for g in softmax for lab in g.labels}
        moved = sorted(lab for lab, s in saved.items() if s != "transformer" and lab in in_softmax)
        if moved:  # a softmax group's scores sum to one only as a whole
            raise UserError(f"{where}: {SOURCES_KEY} moves {moved} off the transformer, but they are in a softmax "
                            f"group ({SOFTMAX_GROUPS_KEY}); re-save the model with train.py")
        return Scoring(labels, softmax, tuple(source_list(labels, saved)))
