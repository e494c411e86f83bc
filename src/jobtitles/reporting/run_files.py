"""What a run writes in its folder: dropped_rows.csv at the start; oof_predictions.csv, label_issues.csv, plots,
cv_results.json and report.md once at the end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jobtitles.core.data import LabeledData
from jobtitles.core.io_utils import write_json, write_text
from jobtitles.core.labels import join_labels
from jobtitles.reporting.report import console_table, render_report
from jobtitles.selection.run_result import LabelIssuesSummary, RunResult
from jobtitles.core.spreadsheet import csv_text, escape_cell

if TYPE_CHECKING:
    from jobtitles.reporting.label_issues import LabelIssues


def write_dropped(run_dir: Path, data: LabeledData) -> None:
    rows = [(row, escape_cell(reason)) for row, reason in data.dropped]  # text cells spreadsheet-safe
    write_text(run_dir / "dropped_rows.csv", csv_text(["row", "reason"], rows))


def oof_rows(data: LabeledData, scores: np.ndarray, pred: np.ndarray):
    labels = data.labels
    for i, title in enumerate(data.titles):
        gold = [labels[j] for j in np.flatnonzero(data.y[i])]
        got = [labels[j] for j in np.flatnonzero(pred[i])]
        # text cells spreadsheet-safe (read back by label_issues.read_oof_predictions and export's parity rows)
        yield [data.rows[i], escape_cell(title), escape_cell(join_labels(gold)), escape_cell(join_labels(got)),
               int(gold == got),
               *[f"{s:.4f}" for s in scores[i]]]


def write_run_files(run_dir: Path, data: LabeledData, result: RunResult, issues: LabelIssues | None) -> None:
    """What the run leaves besides folds/, model/, plots/ and label_issues.csv, written once at its end from
    the finished result: oof_predictions.csv, cv_results.json (complete: a rerun changes nothing), report.md."""
    scores, pred = result.oof_scores, result.oof_predictions
    header = ["row", "title", "gold", "predicted", "correct", *[f"score:{lab}" for lab in data.labels]]
    write_text(run_dir / "oof_predictions.csv", csv_text(header, oof_rows(data, scores, pred)))
    write_text(run_dir / "report.md", render_report(result, issues))
    # last: complete=true makes a rerun do nothing, so a run killed before this line must redo the files above
    write_json(run_dir / "cv_results.json", result.to_json())


def label_issues(run_dir: Path, data: LabeledData, result: RunResult) -> tuple[LabelIssues, LabelIssuesSummary]:
    """Write label_issues.csv; its rows (for report.md) and counts (for the result). Suggestions are the shipped
    decision rule's cross-fitted out-of-fold decisions (the same sets as oof_predictions.csv)."""
    from jobtitles.reporting.label_issues import find_label_issues, write_label_issues

    issues = find_label_issues(data.titles, data.rows, data.y, data.labels, result.oof_scores,
                               result.oof_predictions)
    # the file's name, not its path: the same inputs give the same cv_results.json in any run folder
    return issues, issues.summary(write_label_issues(run_dir, issues).name)


def print_summary(result: RunResult, run_dir: Path) -> None:
    print(console_table(result))
    if result.pipeline_gap is not None:
        print(f"note: {result.pipeline_gap.line()} (TitleClassifier, predict.py, serve and Spark give the measured "
              "answers)")
    if result.label_issues:
        from jobtitles.reporting.label_issues import console_line

        print(console_line(result.label_issues))
    print(f"\nrun folder: {run_dir}  (report.md, cv_results.json, oof_predictions.csv, model/)")
