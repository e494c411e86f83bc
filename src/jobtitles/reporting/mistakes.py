"""The report's error views, computed from the run's out-of-fold arrays (every row scored by the one fold model
that did not train on it, decided by the shipped rule): the worst wrong titles, and a confusion view per label
group and per label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

from jobtitles.core.label_groups import EXACTLY_ONE, LabelGroup
from jobtitles.reporting.label_issues import _cell, _labels_cell  # the label-issue table's escaping, reused
from jobtitles.reporting.markdown import md_cell

if TYPE_CHECKING:
    from jobtitles.selection.run_result import RunResult

TOP_MISTAKES = 30
TITLE_CHARS = 80  # a title longer than this is cut in the table (oof_predictions.csv keeps it whole)
NONE, SEVERAL = "none", "several"  # a row with no label of a group; a prediction with more than one
RANK_RULE = ("ranked by the most confident wrong decision: the largest gap |score − gold| over the labels the "
             "row got wrong (1 − score for a missed label, the score for an extra one); ties by the sum of those "
             "gaps, then by row order")
UNAVAILABLE = "Not available: this result carries no per-row gold labels; `oof_predictions.csv` has every row."


@dataclass(frozen=True)
class Mistake:
    """One wrong out-of-fold row: gold and predicted label sets differ."""

    row: int
    title: str
    gold: tuple[str, ...]
    predicted: tuple[str, ...]
    missed: tuple[tuple[str, float], ...]  # gold, not predicted: (label, score)
    extra: tuple[tuple[str, float], ...]  # predicted, not gold: (label, score)


def _binary(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) > 0.5).astype(np.int8)


def wrong_rows(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Indices of the rows whose predicted label set is not their gold set (`correct` = 0 in
    oof_predictions.csv)."""
    return np.flatnonzero((_binary(gold) != _binary(pred)).any(axis=1))


def rank_mistakes(gold: np.ndarray, pred: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the wrong rows, worst first (RANK_RULE; the last ties by index)."""
    g, p = _binary(gold), _binary(pred)
    gaps = np.where(g != p, np.abs(np.asarray(scores, dtype=np.float64) - g), 0.0)
    wrong = wrong_rows(g, p)
    # np.lexsort sorts by the last key first: largest gap, then largest sum, then lowest index
    order = np.lexsort((wrong, -gaps[wrong].sum(axis=1), -gaps[wrong].max(axis=1)))
    return wrong[order]


def mistakes(r: "RunResult", top: int = TOP_MISTAKES) -> list[Mistake]:
    """The `top` worst wrong rows of the result's out-of-fold decisions."""
    oof, labels = r.oof_rows, r.labels
    g, p, s = _binary(oof.gold), _binary(r.oof_predictions), np.asarray(r.oof_scores, dtype=np.float64)
    out = []
    for i in rank_mistakes(g, p, s)[:top]:
        missed = tuple((labels[j], float(s[i, j])) for j in np.flatnonzero(g[i] & (1 - p[i])))
        extra = tuple((labels[j], float(s[i, j])) for j in np.flatnonzero(p[i] & (1 - g[i])))
        out.append(Mistake(oof.rows[i], oof.titles[i], tuple(labels[j] for j in np.flatnonzero(g[i])),
                           tuple(labels[j] for j in np.flatnonzero(p[i])), missed, extra))
    return out


def title_cell(title: str, limit: int = TITLE_CHARS) -> str:
    """A user's title as one Markdown table cell, cut to `limit` characters (reporting.markdown.md_cell)."""
    return md_cell(title, limit)


def _scored(pairs: tuple[tuple[str, float], ...]) -> str:
    return _cell(", ".join(f"{lab} {score:.2f}" for lab, score in pairs)) if pairs else "–"


def mistakes_section(r: "RunResult", top: int = TOP_MISTAKES) -> str:
    """Markdown for report.md: how many rows are wrong, then the `top` worst."""
    lines = ["## Mistakes (out-of-fold)", ""]
    if r.oof_rows is None or r.oof_scores is None or r.oof_predictions is None:
        return "\n".join(lines + [UNAVAILABLE])
    n_wrong = len(wrong_rows(r.oof_rows.gold, r.oof_predictions))
    lines.append(f"{n_wrong} of {r.n_rows} rows are wrong: their predicted label set is not their gold set "
                 "(`correct` = 0 in `oof_predictions.csv`).")
    if not n_wrong:
        return "\n".join(lines)
    shown = mistakes(r, top)
    lines += ["", f"The worst {len(shown)}, {RANK_RULE}. Scores are the out-of-fold scores the shipped rule "
              "decides on (each label's score source, see Score sources).", "",
              "| # | row | title | gold | predicted | missed (score) | extra (score) |",
              "|---|---|---|---|---|---|---|"]
    for k, m in enumerate(shown, start=1):
        lines.append(f"| {k} | {m.row} | {title_cell(m.title)} | {_labels_cell(list(m.gold))} | "
                     f"{_labels_cell(list(m.predicted))} | {_scored(m.missed)} | {_scored(m.extra)} |")
    return "\n".join(lines)


def group_categories(gold: np.ndarray, columns: np.ndarray, names: list[str]) -> list[str]:
    """Each row's label within a group: the name of its one label, NONE, or SEVERAL."""
    sub = _binary(gold)[:, columns]
    count = sub.sum(axis=1)
    first = sub.argmax(axis=1)
    return [NONE if c == 0 else SEVERAL if c > 1 else names[f] for c, f in zip(count, first)]


def group_confusion(gold: np.ndarray, pred: np.ndarray, columns: np.ndarray,
                    names: list[str]) -> tuple[list[str], np.ndarray]:
    """(categories, counts): counts[a, b] = rows with gold category a predicted as b, over the group's labels,
    NONE, and SEVERAL when any row has it (gold rows have one label of a group at most; predictions of a rule
    without group decoding may have more)."""
    truth, got = group_categories(gold, columns, names), group_categories(pred, columns, names)
    cats = [*names, NONE] + ([SEVERAL] if SEVERAL in truth or SEVERAL in got else [])
    return cats, confusion_matrix(truth, got, labels=cats)


def label_confusion(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """labels x (TP, FP, FN, TN) of the out-of-fold decisions."""
    m = multilabel_confusion_matrix(_binary(gold), _binary(pred))  # per label [[TN, FP], [FN, TP]]
    return np.stack([m[:, 1, 1], m[:, 0, 1], m[:, 1, 0], m[:, 0, 0]], axis=1)


def _group_table(group: LabelGroup, labels: list[str], gold: np.ndarray, pred: np.ndarray) -> str:
    columns = np.array([labels.index(lab) for lab in group.labels])
    cats, counts = group_confusion(gold, pred, columns, list(group.labels))
    kind = "exactly one" if group.kind == EXACTLY_ONE else "at most one"
    lines = [f"**{_cell(group.name)}** ({kind}; rows: gold, columns: predicted)", "",
             "| gold \\ predicted | " + " | ".join(_cell(c) for c in cats) + " |", "|---|" + "---|" * len(cats)]
    lines += [f"| {_cell(c)} | " + " | ".join(str(int(v)) for v in row) + " |" for c, row in zip(cats, counts)]
    return "\n".join(lines)


def _label_table(labels: list[str], gold: np.ndarray, pred: np.ndarray) -> str:
    counts = label_confusion(gold, pred)
    lines = ["| label | TP | FP | FN | TN |", "|---|---|---|---|---|"]
    lines += [f"| {_cell(lab)} | " + " | ".join(str(int(v)) for v in row) + " |" for lab, row in zip(labels, counts)]
    return "\n".join(lines)


def confusion_section(r: "RunResult") -> str:
    """Markdown for report.md: a gold x predicted matrix per label group (when the run has groups), then every
    label's true/false positives and negatives."""
    lines = ["## Confusion (out-of-fold, shipped rule)", ""]
    if r.oof_rows is None or r.oof_predictions is None:
        return "\n".join(lines + [UNAVAILABLE])
    gold, pred = r.oof_rows.gold, r.oof_predictions
    groups = [LabelGroup.from_json(g) for g in r.label_groups]
    if groups:
        lines += [f"Within each label group, gold label against predicted label (`{NONE}`: no label of the group; "
                  f"`{SEVERAL}`, shown where it occurs: more than one).", ""]
        for group in groups:
            lines += [_group_table(group, r.labels, gold, pred), ""]
    lines += ["Per label: TP = given and predicted, FP = predicted only, FN = given only, TN = neither.", "",
              _label_table(r.labels, gold, pred)]
    return "\n".join(lines)
