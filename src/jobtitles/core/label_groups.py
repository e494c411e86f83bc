"""Exclusive label groups: where each `Column N` holds its own family of labels (a seniority level in Column 1,
a department in Column 2), a title has at most one label of each family, and decoding can use that.

Detected from the file (the columns' label vocabularies are pairwise disjoint), or given in the config:

    label_groups: auto          # default: detect
    label_groups: none          # independent thresholds only
    label_groups:               # explicit
      - {labels: [Manager, Director, Vice President], exactly_one: true}
      - {labels: [Sales, Engineering], exactly_one: false}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from jobtitles.core.errors import UserError

EXACTLY_ONE, AT_MOST_ONE = "exactly_one", "at_most_one"


@dataclass(frozen=True)
class LabelGroup:
    name: str
    labels: tuple[str, ...]
    kind: str  # EXACTLY_ONE: every title has one of them; AT_MOST_ONE: zero or one

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "labels": list(self.labels)}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "LabelGroup":
        return LabelGroup(str(d["name"]), tuple(d["labels"]), str(d["kind"]))


def detect_groups(column_cells: list[list[str]]) -> list[LabelGroup]:
    """Groups from the label columns (one list of stripped cells per column, "" for empty). Columns whose
    vocabularies overlap (levels in Columns 1-4) give no groups; a column without labels is skipped."""
    vocab = [sorted({c for c in cells if c}) for cells in column_cells]
    used = [(i, v) for i, v in enumerate(vocab) if v]
    seen: set[str] = set()
    for _, v in used:
        if seen & set(v):
            return []
        seen |= set(v)
    groups = []
    for i, v in used:
        if len(v) < 2:
            continue  # a one-label column decides nothing between labels
        kind = EXACTLY_ONE if all(column_cells[i]) else AT_MOST_ONE
        groups.append(LabelGroup(f"Column {i + 1}", tuple(v), kind))
    return groups


def parse_groups_setting(value: str | None, source: str = "label_groups") -> str | list[dict[str, Any]]:
    """'auto', 'none', or the explicit list (validated for shape here; labels once the data is read)."""
    if value is None or str(value).strip().lower() in ("auto", ""):
        return "auto"
    if str(value).strip().lower() in ("none", "null", "false"):
        return "none"
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise UserError(f"{source}: expected auto, none or a list of {{labels: [...], exactly_one: true|false}}, "
                        f"found {value!r}") from err
    if not isinstance(parsed, list) or not all(isinstance(g, dict) and isinstance(g.get("labels"), list)
                                               for g in parsed):
        raise UserError(f"{source}: expected auto, none or a list of {{labels: [...], exactly_one: true|false}}, "
                        f"found {value!r}")
    for g in parsed:
        unknown = set(g) - {"labels", "exactly_one", "name"}
        if unknown:
            raise UserError(f"{source}: unknown key(s) {sorted(unknown)} in a group; use labels and exactly_one")
    return parsed


def explicit_groups(spec: list[dict[str, Any]], labels: list[str], label_sets: list[list[str]], rows: list[int],
                    path: Path | str) -> list[LabelGroup]:
    groups = []
    check_disjoint([[str(lab) for lab in g["labels"]] for g in spec], "label_groups", first=1)
    for k, g in enumerate(spec):
        members = [str(lab) for lab in g["labels"]]
        unknown = sorted(set(members) - set(labels))
        if unknown:
            raise UserError(f"label_groups: group {k + 1} names labels {unknown} that {path} does not have; the "
                            f"labels are {labels}")
        kind = EXACTLY_ONE if g.get("exactly_one", False) else AT_MOST_ONE
        groups.append(LabelGroup(str(g.get("name", f"group {k + 1}")), tuple(members), kind))
    check_rows(groups, label_sets, rows, path)
    return groups


def check_disjoint(members: list[list[str]], where: str, first: int) -> None:
    """A label belongs to one group at most (groups numbered from `first` in the message)."""
    owner: dict[str, int] = {}
    for k, group in enumerate(members):
        for lab in group:
            if lab in owner:
                raise UserError(f"{where}: label {lab!r} is in groups {owner[lab] + first} and {k + first}; a "
                                "label belongs to one group at most")
            owner[lab] = k


def check_rows(groups: list[LabelGroup], label_sets: list[list[str]], rows: list[int], path: Path | str) -> None:
    for group in groups:
        members = set(group.labels)
        for row, labels in zip(rows, label_sets):
            n = len(members & set(labels))
            if n > 1 or (n == 0 and group.kind == EXACTLY_ONE):
                raise UserError(f"{path}: row {row} has {n} labels of group '{group.name}' {sorted(members)}, "
                                f"expected {'exactly' if group.kind == EXACTLY_ONE else 'at most'} one; fix the row "
                                "or change label_groups")


def group_index(groups: list[LabelGroup], labels: list[str]) -> list[tuple[np.ndarray, bool]]:
    """(column indices, exactly_one) per group, the form `decide` takes."""
    return [(np.array([labels.index(lab) for lab in g.labels]), g.kind == EXACTLY_ONE) for g in groups]


def softmax_groups(group_loss: str, groups: list[LabelGroup], labels: list[str]) -> list[tuple[np.ndarray, bool]] | None:
    """The groups trained with a softmax (group_loss: softmax), in `group_index` form; None: sigmoids only."""
    return group_index(groups, labels) if group_loss == "softmax" and groups else None


def describe(groups: list[LabelGroup]) -> str:
    if not groups:
        return "none (labels are decided independently)"
    return "; ".join(f"{g.name}: {g.kind.replace('_', ' ')} of {list(g.labels)}" for g in groups)
