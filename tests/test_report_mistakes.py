"""report.md's error views: the worst wrong out-of-fold titles, the confusion view, the precision-recall curves
per label; the plots' titles and axis labels, and one fold numbering (from 1) in tables and plots. Unit tests on
small arrays with known answers, then the shared tiny_run_dir fixture (read only)."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from jobtitles.core.io_utils import read_json
from jobtitles.core.label_groups import AT_MOST_ONE, LabelGroup
from jobtitles.reporting import mistakes as mk
from jobtitles.reporting import plots
from jobtitles.reporting.label_issues import read_oof_predictions
from jobtitles.selection.run_result import (DecisionSettings, FoldRecord, OofRows, RuleSummary, RunResult,
                                            SourcesSummary, Timing)

GOLD = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 0], [1, 0]])
PRED = np.array([[1, 0], [0, 1], [0, 1], [1, 1], [0, 0], [1, 1], [1, 1]])
SCORES = np.array([[.9, .1], [.4, .6], [.2, .8], [.55, .9], [.3, .1], [.9, .6], [.9, .6]])


def test_wrong_rows_are_those_whose_label_set_differs():
    assert mk.wrong_rows(GOLD, PRED).tolist() == [1, 3, 4, 5, 6]


def test_mistakes_rank_by_the_largest_wrong_gap_then_its_sum_then_row_order():
    # gaps over the wrong labels: row 1 (0.6, 0.6), row 3 (0.55), row 4 (0.7), rows 5 and 6 (0.6); by the sum
    # first, row 1 (1.2) would lead
    assert mk.rank_mistakes(GOLD, PRED, SCORES).tolist() == [4, 1, 5, 6, 3]


def small_result(labels=("A", "B"), gold=GOLD, pred=PRED, scores=SCORES, titles=None, groups=(),
                 sources: dict[str, str] | None = None) -> RunResult:
    """A hand-made two-fold result with out-of-fold arrays (no training)."""
    n, variants = len(gold), ("model", "baseline")
    fig = {"micro_f1": 0.8, "subset_accuracy": 0.7}
    folds = [FoldRecord(fold=k, n_train=n - n // 2, n_test=n // 2, train_metrics=None, train_seconds=1.0,
                        loss_history=[{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}], thresholds={},
                        metrics={v: fig for v in variants}) for k in range(2)]
    per = {v: {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for lab in labels} for v in variants}
    chosen = SourcesSummary(True, "test", {lab: sources.get(lab, "transformer") for lab in labels}, {}, {}) \
        if sources else None
    return RunResult(
        labels=list(labels), label_support={lab: int(np.sum(np.asarray(gold)[:, j])) for j, lab in enumerate(labels)},
        n_rows=n, n_dropped=0, n_splits=2, train_file="titles.csv", model_name_or_path="tiny",
        decision=DecisionSettings(0.5, None, False, 10, True, "none", None),
        decision_rule=RuleSummary("configured", "model", "test", 0.0, 0.0, {}, {}),
        label_groups=[g.to_json() for g in groups], label_groups_used=bool(groups), score_sources=chosen,
        head_init="random", group_loss="bce", precision={}, thresholds={lab: 0.5 for lab in labels},
        threshold_notes={}, summary={}, per_label=per, missing_labels={}, folds=folds, baseline_name="tfidf",
        timing=Timing(1.0, [1.0, 1.0], None), oof_scores=np.asarray(scores, dtype=float),
        oof_predictions=np.asarray(pred),
        oof_rows=OofRows(tuple(range(2, n + 2)), tuple(titles or [f"title {i}" for i in range(n)]), np.asarray(gold)))


def tiny_result(run_dir: Path) -> RunResult:
    """The tiny run's result with its out-of-fold arrays read back from oof_predictions.csv (cv_results.json
    keeps no arrays)."""
    titles, rows, y, _, scores, pred = read_oof_predictions(run_dir / "oof_predictions.csv")
    r = RunResult.from_json(read_json(run_dir / "cv_results.json"))
    return replace(r, oof_scores=scores, oof_predictions=pred, oof_rows=OofRows(tuple(rows), tuple(titles), y))


def table_rows(report: str, heading: str) -> list[list[str]]:
    """The cells of the first table under `heading` (up to the next heading), header and rule left out."""
    section = report.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    return [re.split(r"(?<!\\) \| ", ln[2:-2]) for ln in lines[2:]]


def test_mistakes_section_escapes_and_cuts_titles_and_shows_the_wrong_labels_scores():
    titles = ["ok", "VP | Sales\nEMEA", "fine", "x" * 200, "a\\|b", "six", "seven"]
    r = small_result(titles=titles)
    text = mk.mistakes_section(r, top=3)
    assert "5 of 7 rows are wrong" in text
    rows = table_rows(text, "## Mistakes (out-of-fold)")
    assert [row[:2] for row in rows] == [["1", "6"], ["2", "3"], ["3", "7"]]  # rows 4, 1, 5 at header row 1
    assert rows[0][2:] == ["a\\\\\\|b", "A", "–", "A 0.30", "–"]  # backslash doubled, pipe escaped
    assert rows[1][2] == "VP \\| Sales EMEA"  # one line, the pipe escaped
    assert mk.title_cell("x" * 200) == "x" * 79 + "…"
    assert mk.mistakes_section(replace(r, oof_rows=None)).endswith(mk.UNAVAILABLE)


def test_group_confusion_counts_gold_against_predicted_with_none_and_several():
    # columns 0, 1 form the group; column 2 is outside it
    gold = np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1], [0, 1, 0]])
    pred = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]])
    cats, counts = mk.group_confusion(gold, pred, np.array([0, 1]), ["A", "B"])
    assert cats == ["A", "B", "none", "several"]
    assert counts.tolist() == [[1, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    cats, counts = mk.group_confusion(gold[:4], pred[:4], np.array([0, 1]), ["A", "B"])
    assert cats == ["A", "B", "none"] and counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_label_confusion_counts_tp_fp_fn_tn_per_label():
    gold = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [0, 0]])
    pred = np.array([[1, 1], [0, 1], [0, 0], [0, 0], [1, 1]])
    assert mk.label_confusion(gold, pred).tolist() == [[1, 1, 1, 2], [1, 2, 1, 1]]
    assert mk.label_confusion(gold, gold).tolist() == [[2, 0, 0, 3], [2, 0, 0, 3]]


def test_confusion_section_has_a_matrix_per_group_and_a_row_per_label():
    gold = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    pred = np.array([[1, 0], [0, 1], [0, 1], [1, 0]])
    group = LabelGroup("Column 1", ("A", "B"), AT_MOST_ONE)
    text = mk.confusion_section(small_result(gold=gold, pred=pred, scores=gold * 0.8, groups=[group]))
    assert "| gold \\ predicted | A | B | none |" in text
    assert "| A | 1 | 1 | 0 |\n| B | 0 | 1 | 0 |\n| none | 1 | 0 | 0 |" in text
    assert "| A | 1 | 1 | 1 | 1 |\n| B | 1 | 1 | 0 | 2 |" in text  # TP FP FN TN
    no_groups = mk.confusion_section(small_result(gold=gold, pred=pred, scores=gold * 0.8))
    assert "gold \\ predicted" not in no_groups and "| B | 1 | 1 | 0 | 2 |" in no_groups


def test_operating_point_is_the_threshold_rule_on_the_curve():
    gold, scores = np.array([1, 1, 0, 0, 1]), np.array([.9, .6, .55, .2, .4])
    assert plots.operating_point(gold, scores, 0.5)[2:] == pytest.approx((2 / 3, 2 / 3))  # .9 .6 .55 positive
    assert plots.operating_point(gold, scores, 0.6)[2:] == pytest.approx((1.0, 2 / 3))  # score >= threshold
    assert plots.operating_point(gold, scores, 0.95)[2:] == pytest.approx((1.0, 0.0))  # nothing positive


# ---- the tiny run ------------------------------------------------------------------------------------------

def test_report_lists_the_worst_wrong_oof_titles(tiny_run_dir):
    with open(tiny_run_dir / "oof_predictions.csv", encoding="utf-8", newline="") as fh:
        oof = {int(rec["row"]): rec for rec in csv.DictReader(fh, delimiter=";")}
    wrong = {row for row, rec in oof.items() if rec["correct"] == "0"}
    assert wrong, "the tiny run has no wrong rows: nothing to check"
    rows = table_rows((tiny_run_dir / "report.md").read_text(encoding="utf-8"), "## Mistakes (out-of-fold)")
    assert len(rows) == min(mk.TOP_MISTAKES, len(wrong))
    assert [row[0] for row in rows] == [str(k) for k in range(1, len(rows) + 1)]
    for row in rows:
        assert int(row[1]) in wrong and row[2] == mk.title_cell(oof[int(row[1])]["title"])


def test_report_links_a_precision_recall_plot_per_page_of_labels(tiny_run_dir):
    labels = read_json(tiny_run_dir / "cv_results.json")["labels"]
    report = (tiny_run_dir / "report.md").read_text(encoding="utf-8")
    pages = plots.pr_pages(len(labels))
    assert sum(len(p) for p in pages) == len(labels)
    for k in range(1, len(pages) + 1):
        path = tiny_run_dir / "plots" / f"pr_curves_{k}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](plots/pr_curves_{k}.png)" in report.split("## Precision-recall per label", 1)[1]


def test_folds_are_numbered_from_one_in_tables_and_plots(tiny_run_dir):
    r = tiny_result(tiny_run_dir)
    rows = table_rows((tiny_run_dir / "report.md").read_text(encoding="utf-8"), "## Per fold")
    assert [row[0] for row in rows] == [str(k) for k in range(1, r.n_splits + 1)]
    axes = plots.per_fold_figure(r).axes
    assert [list(ax.get_xticks()) for ax in axes] == [list(range(1, r.n_splits + 1))] * 2
    legend = plots.training_loss_figure(r).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [f"fold {k}" for k in range(1, r.n_splits + 1)]
    missing = {lab: [k + 1 for k in ks] for lab, ks in r.missing_labels.items()}
    for lab, ks in missing.items():
        assert f"**{lab}**: no positive row in test fold(s) {', '.join(map(str, ks))} " in \
            (tiny_run_dir / "report.md").read_text(encoding="utf-8")


def test_every_plot_has_a_title_and_labelled_axes():
    r = small_result()
    figures = [plots.per_label_f1_figure(r), plots.label_frequency_figure(r), plots.per_fold_figure(r),
               plots.training_loss_figure(r), plots.pr_figure(r, [0, 1])]
    for fig in figures:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        assert shown
        for ax in shown:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), (ax.get_title(), ax.get_xlabel())
    assert len([ax for ax in figures[-1].axes if ax.get_visible()]) == 2  # one panel per label, the rest hidden
    assert [list(ax.get_xticks()) for ax in figures[2].axes] == [[1, 2], [1, 2]]  # folds from 1


def test_per_label_plots_name_the_labels_scored_by_another_source():
    labels = ("A", "B", "C")
    gold, pred = np.array([[1, 0, 1], [0, 1, 0]]), np.array([[1, 0, 0], [0, 1, 1]])
    r = small_result(labels, gold, pred, pred * 0.9, sources={"A": "baseline", "B": "blend"})
    ticks = [t.get_text() for t in plots.per_label_f1_figure(r).axes[0].get_yticklabels()]
    assert ticks == ["A (TF-IDF)", "B (blend)", "C"]
    titles = [ax.get_title() for ax in plots.pr_figure(r, [0, 1, 2]).axes if ax.get_visible()]
    assert titles == ticks
    not_adopted = replace(r, score_sources=replace(r.score_sources, adopted=False))
    assert [t.get_text() for t in plots.per_label_f1_figure(not_adopted).axes[0].get_yticklabels()] == list(labels)


def test_pr_pages_cover_every_label_once():
    assert plots.pr_pages(45, per_page=20) == [list(range(20)), list(range(20, 40)), list(range(40, 45))]


def test_whole_label_set_data_leads_with_subset_accuracy():
    """Where the rule was chosen on subset accuracy (every title has one label of each group), the report, the
    card and the console put that figure first and say why."""
    from jobtitles.reporting.report import console_table, metric_table, objective_note
    from jobtitles.selection.decisions import SUBSET_OBJECTIVE

    r = small_result()
    whole = replace(r, decision_rule=replace(r.decision_rule, objective=SUBSET_OBJECTIVE))
    assert metric_table(r).splitlines()[2].startswith("| micro_f1 |")
    assert metric_table(whole).splitlines()[2].startswith("| subset_accuracy |")
    assert console_table(whole).splitlines()[1].startswith("subset_accuracy")
    assert objective_note(r) == "" and "subset accuracy is the headline" in objective_note(whole)
