"""The decision rule: how a title's per-label scores become its label set, as one frozen value.

    rule = DecisionRule(labels, thresholds, at_least_one=True, exclusive_label="Not Required", groups=(...))
    rule.decide(scores)            # multi-hot int8, one row per title
    rule.to_config()               # the config.json keys a model folder carries
    DecisionRule.from_config(cfg, labels, where)   # read back, every key checked (a folder may be hostile)

Training (fold metrics, the rule choice, the fit check) and every prediction backend call `decide` on the
same type, so the figures of a run score exactly what a model folder applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from jobtitles.core.errors import UserError
from jobtitles.core.label_groups import AT_MOST_ONE, EXACTLY_ONE, LabelGroup, check_disjoint

THRESHOLDS_KEY = "decision_thresholds"
AT_LEAST_ONE_KEY = "decision_at_least_one"
EXCLUSIVE_KEY = "decision_exclusive_label"  # the empty label: never decided together with another label
GROUPS_KEY = "decision_label_groups"  # exclusive label groups decoded one label per group (when adopted)
RULE_KEYS = (THRESHOLDS_KEY, AT_LEAST_ONE_KEY, EXCLUSIVE_KEY, GROUPS_KEY)


@dataclass(frozen=True)
class DecisionRule:
    labels: tuple[str, ...]
    thresholds: tuple[float, ...]  # one per label, in label order
    at_least_one: bool = True  # a title with no score over its threshold gets its top label
    exclusive_label: str | None = None  # "none of the others": never decided beside another label
    groups: tuple[LabelGroup, ...] = ()  # decoded one label per group

    @staticmethod
    def uniform(labels: Sequence[str], threshold: float, at_least_one: bool = True,
                exclusive_label: str | None = None, groups: Sequence[LabelGroup] = ()) -> "DecisionRule":
        return DecisionRule(tuple(labels), (float(threshold),) * len(labels), at_least_one,
                            _present(exclusive_label, labels), tuple(groups))

    def with_thresholds(self, thresholds: Sequence[float] | np.ndarray) -> "DecisionRule":
        return replace(self, thresholds=tuple(float(t) for t in np.asarray(thresholds, dtype=np.float64)))

    def with_groups(self, groups: Sequence[LabelGroup]) -> "DecisionRule":
        return replace(self, groups=tuple(groups))

    @property
    def threshold_map(self) -> dict[str, float]:
        return dict(zip(self.labels, self.thresholds))

    @cached_property
    def _columns(self) -> tuple[np.ndarray, int | None, list[tuple[np.ndarray, bool]]]:
        exclusive = self.labels.index(self.exclusive_label) if self.exclusive_label is not None else None
        groups = [(group_columns(g, self.labels), g.kind == EXACTLY_ONE) for g in self.groups]
        return np.asarray(self.thresholds, dtype=np.float64), exclusive, groups

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Multi-hot decisions. Within an exactly-one group the top label is taken; within an at-most-one group
        the top label if it passes its threshold; other labels keep their thresholds. With at_least_one, a row
        with nothing decided gets its top label. The exclusive (empty) label means "none of the other labels":
        where it and another label pass, the side with the higher score wins."""
        thresholds, exclusive, groups = self._columns
        scores = np.asarray(scores)
        pred = scores >= thresholds
        rows = np.arange(len(scores))
        for cols, exactly_one in groups:
            top = cols[scores[:, cols].argmax(axis=1)]
            keep = np.ones(len(scores), dtype=bool) if exactly_one else pred[rows, top]
            pred[:, cols] = False
            pred[rows[keep], top[keep]] = True
        if self.at_least_one and len(scores):
            empty = ~pred.any(axis=1)
            pred[empty, scores[empty].argmax(axis=1)] = True
        if exclusive is not None and len(scores):
            others = np.ones(scores.shape[1], dtype=bool)
            others[exclusive] = False
            passing = np.where(pred[:, others], scores[:, others], -np.inf).max(axis=1)
            both = pred[:, exclusive] & np.isfinite(passing)
            empty_wins = both & (scores[:, exclusive] >= passing)
            pred[both & ~empty_wins, exclusive] = False
            pred[np.ix_(empty_wins, others)] = False
        return pred.astype(np.int8)

    def to_config(self) -> dict[str, Any]:
        return {THRESHOLDS_KEY: self.threshold_map, AT_LEAST_ONE_KEY: self.at_least_one,
                EXCLUSIVE_KEY: self.exclusive_label,
                GROUPS_KEY: [g.to_json() for g in self.groups] if self.groups else None}

    @staticmethod
    def from_config(cfg: dict[str, Any], labels: Sequence[str], where: str,
                    threshold: float | None = None) -> "DecisionRule":
        """The saved rule, every key checked; `threshold` replaces every saved threshold (predict --threshold).
        A folder without saved thresholds gets 0.5 for every label (a warning)."""
        labels = tuple(labels)
        thresholds = _thresholds(cfg.get(THRESHOLDS_KEY), labels, where) if threshold is None else \
            (float(threshold),) * len(labels)
        at_least_one = cfg.get(AT_LEAST_ONE_KEY, True)
        if not isinstance(at_least_one, bool):
            raise UserError(f"{where}: {AT_LEAST_ONE_KEY} must be true or false, found {at_least_one!r}; "
                            "re-save the model with train.py or fix config.json")
        exclusive = cfg.get(EXCLUSIVE_KEY)
        if exclusive is not None and exclusive not in labels:
            raise UserError(f"{where}: {EXCLUSIVE_KEY} must be null or one of the model's labels {list(labels)}, "
                            f"found {exclusive!r}; re-save the model with train.py or fix config.json")
        groups = groups_from_config(cfg.get(GROUPS_KEY), labels, where, GROUPS_KEY)
        return DecisionRule(labels, thresholds, at_least_one, exclusive, groups)


def _present(label: str | None, labels: Sequence[str]) -> str | None:
    return label if label is not None and label in labels else None


def group_columns(group: LabelGroup, labels: Sequence[str]) -> np.ndarray:
    return np.array([labels.index(lab) for lab in group.labels])


def _thresholds(saved: Any, labels: tuple[str, ...], where: str) -> tuple[float, ...]:
    if saved is None:
        from jobtitles.core.log import warn

        warn(f"{where}: config.json has no {THRESHOLDS_KEY}; using 0.5 for every label")
        return (0.5,) * len(labels)
    if not isinstance(saved, dict):
        raise UserError(f"{where}: {THRESHOLDS_KEY} must be a mapping from label to threshold, found "
                        f"{type(saved).__name__}; re-save the model with train.py")
    if set(saved) != set(labels):
        raise UserError(f"{where}: config.json thresholds are for labels {sorted(map(str, saved))} but the model "
                        f"has {sorted(labels)}; the folder mixes two runs, re-save it with train.py")
    for label in labels:
        value = saved[label]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1 \
                or math.isnan(value):
            raise UserError(f"{where}: {THRESHOLDS_KEY}[{label!r}] must be a number from 0 to 1, found {value!r}; "
                            "re-save the model with train.py or fix config.json")
    return tuple(float(saved[label]) for label in labels)


def groups_from_config(saved: Any, labels: tuple[str, ...], where: str, key: str) -> tuple[LabelGroup, ...]:
    """Saved label groups, checked: a list of {name, labels, kind}, labels of the model, none in two groups."""
    if saved is None:
        return ()
    expected = f"a list of {{name, labels, kind}} with kind {EXACTLY_ONE} or {AT_MOST_ONE}"
    if not isinstance(saved, list):
        raise UserError(f"{where}: {key} must be {expected}, found {type(saved).__name__}; re-save the model")
    groups = []
    for k, g in enumerate(saved):
        if not isinstance(g, dict) or set(g) != {"name", "labels", "kind"} or not isinstance(g["name"], str) \
                or not isinstance(g["labels"], list) or g["kind"] not in (EXACTLY_ONE, AT_MOST_ONE):
            raise UserError(f"{where}: {key}[{k}] must be {expected}, found {g!r:.200}; re-save the model")
        members = g["labels"]
        unknown = [lab for lab in members if lab not in labels]
        if unknown or len(set(members)) != len(members) or len(members) < 2:
            raise UserError(f"{where}: {key}[{k}] must name at least 2 distinct labels of the model "
                            f"{list(labels)}, found {members!r:.200}; re-save the model")
        groups.append(LabelGroup(g["name"], tuple(members), g["kind"]))
    check_disjoint([list(g.labels) for g in groups], f"{where}: {key}", first=0)
    return tuple(groups)
