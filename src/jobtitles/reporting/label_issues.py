"""Rows whose given labels are probably wrong: cleanlab's multi-label ranking on the out-of-fold scores, plus
titles that appear more than once with different label sets (certain conflicts, found without cleanlab).

cleanlab is AGPL-3.0, so it is an optional extra (`pip install "jobtitles[label-issues]"`); without it the
conflicts are still listed and one line says how to turn the ranking on. Nothing here ever stops a run.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jobtitles.core.io_utils import write_text
from jobtitles.core.labels import join_labels, split_labels
from jobtitles.selection.run_result import LabelIssuesSummary
from jobtitles.core.spreadsheet import escape_cell, read_rows, unescape_cell
from jobtitles.reporting.markdown import md_cell

FILENAME = "label_issues.csv"
INSTALL_HINT = 'pip install "jobtitles[label-issues]"'
COLUMNS = ["row", "title", "given", "suggested", "quality", "missing", "extra", "flagged", "kind", "conflict_rows"]
TEXT_COLUMNS = ("title", "given", "suggested", "missing", "extra")  # spreadsheet-escaped (jobtitles.core.spreadsheet)
# kinds, in the words of label_issues.csv
CONFLICT, SWAP, MISSING, EXTRA, LOW_SCORE = "conflict", "swap", "missing", "extra", "low_score"


@dataclass
class LabelRow:
    row: int  # spreadsheet row of the user's file (header = row 1)
    title: str
    given: list[str]
    suggested: list[str]  # the model's saved decision rule on the out-of-fold scores
    quality: float | None  # cleanlab label quality in [0, 1], low = probably wrong; None without the ranking
    missing: list[str]  # suggested but not given
    extra: list[str]  # given but not suggested
    flagged: bool  # model_flagged or in a conflict group: worth a look
    kind: str  # "conflict", "swap", "missing", "extra", "low_score" or "" (not flagged)
    conflict_rows: list[int] = field(default_factory=list)  # same folded title, other label set
    model_flagged: bool = False  # cleanlab's find_label_issues flagged it


@dataclass
class LabelIssues:
    rows: list[LabelRow]  # every row, worst first: flagged, then quality ascending, then row number
    ranked: bool  # cleanlab's ranking ran
    note: str | None = None  # one line when the ranking is off or was skipped, and why

    @property
    def flagged(self) -> list[LabelRow]:
        return [r for r in self.rows if r.flagged]

    @property
    def n_flagged(self) -> int:
        return sum(r.flagged for r in self.rows)

    @property
    def n_model_flagged(self) -> int:
        return sum(r.model_flagged for r in self.rows)

    @property
    def n_conflict_rows(self) -> int:
        return sum(bool(r.conflict_rows) for r in self.rows)

    @property
    def n_conflict_titles(self) -> int:
        return len({fold_title(r.title) for r in self.rows if r.conflict_rows})

    def summary(self, file: str) -> LabelIssuesSummary:
        """The figures the run's result keeps (counts only; the rows live in `file`)."""
        return LabelIssuesSummary(ranked=self.ranked, note=self.note, n_rows=len(self.rows), n_flagged=self.n_flagged,
                                  n_model_flagged=self.n_model_flagged, n_conflict_rows=self.n_conflict_rows,
                                  n_conflict_titles=self.n_conflict_titles, file=file)


def fold_title(title: str) -> str:
    """Key of near-duplicate titles: Unicode-normalised, case-folded, punctuation and whitespace removed, so
    "Dir. Sales", "dir sales" and "Dir Sales" meet. Symbols such as + and # are kept (C++ is not C)."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def find_conflicts(titles: list[str], rows: list[int], y: np.ndarray) -> dict[int, list[int]]:
    """index -> rows with the same folded title but another label set (only indices that have any)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, title in enumerate(titles):
        groups[fold_title(title)].append(i)
    out: dict[int, list[int]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        sets = {i: tuple(np.flatnonzero(y[i])) for i in members}
        for i in members:
            others = [rows[j] for j in members if sets[j] != sets[i]]
            if others:
                out[i] = others
    return out


def _cleanlab_ranking(y: np.ndarray, scores: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(quality per row, flagged mask, note) from cleanlab.multilabel_classification on the out-of-fold scores.

    cleanlab's one-vs-rest noise estimate needs each label column to have positives and negatives; a label on
    every row (or on none) is left out of the ranking and named in the note instead of failing the run."""
    from cleanlab.multilabel_classification import get_label_quality_scores
    from cleanlab.multilabel_classification.filter import find_label_issues as cl_find_label_issues

    positives = y.sum(axis=0)
    usable = np.flatnonzero((positives > 0) & (positives < len(y)))
    note = None
    if len(usable) < y.shape[1]:
        left_out = [labels[j] for j in range(y.shape[1]) if j not in set(usable)]
        note = f"labels on every row (or none) left out of the ranking: {', '.join(left_out)}"
    if len(usable) == 0:
        return np.full(len(y), np.nan), np.zeros(len(y), dtype=bool), "ranking skipped: no label varies across rows"
    sub_y, sub_p = y[:, usable], np.clip(scores[:, usable].astype(np.float64), 0.0, 1.0)
    given = [np.flatnonzero(r).tolist() for r in sub_y]  # cleanlab's format: class indices per row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its warnings about small classes say nothing a user can act on here
        quality = get_label_quality_scores(given, sub_p)
        # n_jobs=1: no worker processes for a few thousand rows (seconds), and none to leak from a training run
        mask = cl_find_label_issues(given, sub_p, n_jobs=1)
    return np.asarray(quality, dtype=np.float64), np.asarray(mask, dtype=bool), note


def _kind(missing: list[str], extra: list[str]) -> str:
    if missing and extra:
        return SWAP
    return MISSING if missing else EXTRA if extra else LOW_SCORE


def find_label_issues(titles: list[str], rows: list[int], y: np.ndarray, labels: list[str], oof_scores: np.ndarray,
                      suggested: np.ndarray, *, use_cleanlab: bool = True) -> LabelIssues:
    """Every row with its given and suggested labels, cleanlab's quality score and flag (when installed and
    `use_cleanlab`), and the conflict groups (always). Never raises for the data's sake: a failed ranking
    becomes a note and the conflicts are still listed."""
    y = (np.asarray(y) > 0.5).astype(np.int8)
    scores = np.asarray(oof_scores, dtype=np.float64)
    suggested = (np.asarray(suggested) > 0).astype(np.int8)
    n = len(titles)
    if not (len(rows) == n and y.shape == scores.shape == suggested.shape == (n, len(labels))):
        raise ValueError(f"expected {n} rows x {len(labels)} labels everywhere; found rows={len(rows)}, "
                         f"y={y.shape}, oof_scores={scores.shape}, suggested={suggested.shape}")
    quality = np.full(n, np.nan)
    model_flagged = np.zeros(n, dtype=bool)
    ranked, note = False, None
    if not use_cleanlab:
        note = "label-issue ranking off (label_issues: false); conflicting duplicates only"
    else:
        try:
            import cleanlab  # noqa: F401
        except ImportError:
            note = f"label-issue ranking off: cleanlab is not installed; {INSTALL_HINT} to enable it (AGPL-3.0)"
        else:
            try:
                quality, model_flagged, note = _cleanlab_ranking(y, scores, labels)
                ranked = not np.isnan(quality).all()
            except Exception as err:  # a ranking is a hint, never a reason to lose a finished run
                note = f"label-issue ranking skipped: cleanlab failed ({type(err).__name__}: {err})"
    conflicts = find_conflicts(titles, rows, y)

    out = []
    for i in range(n):
        given = [labels[j] for j in np.flatnonzero(y[i])]
        sugg = [labels[j] for j in np.flatnonzero(suggested[i])]
        missing = [labels[j] for j in np.flatnonzero(suggested[i] & (1 - y[i]))]
        extra = [labels[j] for j in np.flatnonzero(y[i] & (1 - suggested[i]))]
        in_conflict = i in conflicts
        flagged = bool(model_flagged[i]) or in_conflict
        kind = CONFLICT if in_conflict else _kind(missing, extra) if flagged else ""
        q = None if np.isnan(quality[i]) else float(quality[i])
        out.append(LabelRow(rows[i], titles[i], given, sugg, q, missing, extra, flagged, kind,
                            conflicts.get(i, []), bool(model_flagged[i])))
    out.sort(key=lambda r: (not r.flagged, 2.0 if r.quality is None else r.quality, r.row))
    return LabelIssues(out, ranked, note)


# ---- files and text ------------------------------------------------------------------------------------------

def _csv_line(cells: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=";", lineterminator="\n").writerow(cells)
    return buf.getvalue()


def write_label_issues(run_dir: Path, issues: LabelIssues) -> Path:
    """label_issues.csv in the run folder (semicolon, UTF-8, every row, worst first), written to a temporary
    file in the same folder and renamed (io_utils.write_text), so a reader never sees half a file."""
    path = Path(run_dir) / FILENAME
    parts = [_csv_line(COLUMNS)]
    for r in issues.rows:
        title, given, suggested, missing, extra = (escape_cell(t) for t in (
            r.title, join_labels(r.given), join_labels(r.suggested), join_labels(r.missing), join_labels(r.extra)))
        parts.append(_csv_line([r.row, title, given, suggested, "" if r.quality is None else f"{r.quality:.4f}",
                                missing, extra, int(r.flagged), r.kind, " ".join(map(str, r.conflict_rows))]))
    write_text(path, "".join(parts))
    return path


def read_label_issues(path: Path) -> list[dict[str, str]]:
    """The rows of a label_issues.csv as dicts of its columns (strings, as they were before spreadsheet escaping)."""
    return read_rows(path, TEXT_COLUMNS)


def read_oof_predictions(path: Path) -> tuple[list[str], list[int], np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(titles, rows, y, labels, scores, predicted) from a run's oof_predictions.csv
    (`row;title;gold;predicted;correct;score:<label>...`), for tools that work on a finished run."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader)
        records = list(reader)
    labels = [h.split(":", 1)[1] for h in header if h.startswith("score:")]
    first = header.index(f"score:{labels[0]}")
    index = {lab: j for j, lab in enumerate(labels)}
    n = len(records)
    y = np.zeros((n, len(labels)), dtype=np.float32)
    pred = np.zeros((n, len(labels)), dtype=np.int8)
    scores = np.array([[float(c) for c in rec[first:first + len(labels)]] for rec in records],
                      dtype=np.float64).reshape(n, len(labels))
    for i, rec in enumerate(records):
        for lab in split_labels(unescape_cell(rec[2])):
            y[i, index[lab]] = 1
        for lab in split_labels(unescape_cell(rec[3])):
            pred[i, index[lab]] = 1
    return [unescape_cell(rec[1]) for rec in records], [int(rec[0]) for rec in records], y, labels, scores, pred


def _cell(text: str) -> str:
    """A Markdown table cell of user text, whole (reporting.markdown.md_cell)."""
    return md_cell(text, None)


def _labels_cell(labs: list[str]) -> str:
    return _cell(", ".join(labs)) if labs else "–"


def report_section(issues: LabelIssues, top: int = 20) -> str:
    """Markdown for report.md: counts, then the `top` worst flagged rows."""
    lines = ["## Label issues", ""]
    if issues.ranked:
        lines.append(f"{issues.n_flagged} of {len(issues.rows)} rows flagged: {issues.n_model_flagged} by cleanlab's "
                     f"confident learning on the out-of-fold scores, {issues.n_conflict_rows} rows in "
                     f"{issues.n_conflict_titles} titles that appear with conflicting label sets.")
    else:
        lines.append(f"{issues.n_conflict_rows} rows in {issues.n_conflict_titles} titles appear with conflicting "
                     "label sets (same title after folding case, punctuation and spacing).")
    if issues.note:
        lines += ["", f"*{_cell(issues.note)}*"]
    lines += ["", "Every row, worst first, with a `flagged` column: `label_issues.csv`. Fix a suggestion with "
              "`python -m jobtitles.relabel --run <this folder> --accept rows.txt` (see docs/label_issues.md)."]
    shown = issues.flagged[:top]
    if shown:
        lines += ["", f"Top {len(shown)} flagged rows:", "",
                  "| row | title | given | suggested | quality | kind | conflicts with rows |", "|---|---|---|---|---|---|---|"]
        for r in shown:
            q = "–" if r.quality is None else f"{r.quality:.3f}"
            lines.append(f"| {r.row} | {_cell(r.title)} | {_labels_cell(r.given)} | {_labels_cell(r.suggested)} | "
                         f"{q} | {r.kind} | {' '.join(map(str, r.conflict_rows)) or '–'} |")
    return "\n".join(lines) + "\n"


def console_line(issues: LabelIssuesSummary) -> str:
    """One line for the console summary (with the install hint when the ranking is off)."""
    if issues.ranked:
        text = (f"label issues: {issues.n_flagged} rows flagged ({issues.n_conflict_rows} in conflicting duplicates), "
                f"worst first in {issues.file}")
    else:
        text = f"label issues: {issues.n_conflict_rows} rows in conflicting duplicates, listed in {issues.file}"
    if issues.note:
        text += f"; {issues.note}"
    return text

