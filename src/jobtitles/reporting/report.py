"""Render a RunResult as Markdown (report.md, model card) and as a console table. Figures are only read from
the result here, never recomputed, so every view shows the same figures; the error views (mistakes, confusion,
precision-recall) are counted from the result's out-of-fold arrays (reporting.mistakes, reporting.plots). Folds
are numbered from 1 for people (tables and plots alike); files and JSON keys keep their 0-based index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobtitles.selection.candidates import BASELINE, CONFIGURED, ORDER, TRAIN, fold_key, short_name, title
from jobtitles.core.metrics import METRICS
from jobtitles.selection.decisions import SUBSET_OBJECTIVE
from jobtitles.reporting.run_time import budget_text, final_rows, rows_line, time_table

if TYPE_CHECKING:
    from jobtitles.reporting.label_issues import LabelIssues
    from jobtitles.selection.run_result import RunResult

LOWER_IS_BETTER = {"hamming_loss"}


def fmt(cell: dict) -> str:
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


def headline_metrics(r: "RunResult") -> tuple[str, ...]:
    """The metrics in the order the report shows them: what the decision rule was chosen on comes first."""
    if r.decision_rule.objective == SUBSET_OBJECTIVE:
        return ("subset_accuracy", *(m for m in METRICS if m != "subset_accuracy"))
    return METRICS


def objective_note(r: "RunResult") -> str:
    if r.decision_rule.objective != SUBSET_OBJECTIVE:
        return ""
    return ("Every title has exactly one label of each group, so a label set is right or wrong as a whole: subset "
            "accuracy is the headline and the figure the decision rule was chosen on (micro-F1 gives part credit "
            "to a set with two labels of a group, which is never right).\n\n")


def metric_table(r: "RunResult") -> str:
    variants = [v for v in ORDER if v in r.summary]
    head = "| metric | " + " | ".join(title(v) for v in variants) + " |"
    rule = "|---|" + "---|" * len(variants)
    lines = [head, rule]
    for m in headline_metrics(r):
        arrow = " (lower is better)" if m in LOWER_IS_BETTER else ""
        lines.append(f"| {m}{arrow} | " + " | ".join(fmt(r.summary[v][m]) for v in variants) + " |")
    return "\n".join(lines)


def label_table(r: "RunResult") -> str:
    per = r.per_label
    chosen = r.shipped_variant
    has_base = BASELINE in per
    head = "| label | support | precision | recall | F1 | threshold |" + (" baseline F1 |" if has_base else "")
    lines = [head, "|---|---|---|---|---|---|" + ("---|" if has_base else "")]
    for lab in r.labels:
        m = per[chosen][lab]
        row = (f"| {lab} | {r.label_support[lab]} | {m['precision']:.4f} | {m['recall']:.4f} | "
               f"{m['f1']:.4f} | {r.thresholds[lab]:.2f} |")
        if has_base:
            row += f" {per['baseline'][lab]['f1']:.4f} |"
        lines.append(row)
    return "\n".join(lines)


def fold_table(r: "RunResult") -> str:
    rows = [v for v in ORDER if v != TRAIN and v in r.folds[0].metrics]
    head = ("| fold | train rows | test rows | "
            + " | ".join(f"{fold_key(v)} micro-F1 | {fold_key(v)} subset acc." for v in rows) + " |")
    lines = [head, "|---|---|---|" + "---|---|" * len(rows)]
    for f in r.folds:
        cells = " | ".join(f"{f.metrics[v]['micro_f1']:.4f} | {f.metrics[v]['subset_accuracy']:.4f}" for v in rows)
        lines.append(f"| {f.fold + 1} | {f.n_train} | {f.n_test} | {cells} |")  # 1-based, as in the plots
    return "\n".join(lines)


def missing_text(r: "RunResult") -> str:
    missing = r.missing_labels
    if not missing:
        return "Every label has at least one positive row in every test fold."
    items = [f"- **{lab}**: no positive row in test fold(s) {', '.join(str(k + 1) for k in ks)} "
             f"({r.label_support[lab]} rows in all); its per-fold scores there say nothing about it."
             for lab, ks in missing.items()]
    return "\n".join(items)


RARE_ROWS = 20  # labels with fewer rows are named, with their F1, in the card and on the console


def weakest_labels(r: "RunResult", n: int = 3) -> list[tuple[str, float, float | None]]:
    """(label, out-of-fold F1 with the shipped rule, baseline F1) of the n labels with the lowest F1."""
    per = r.per_label
    chosen = r.shipped_variant
    rows = [(lab, per[chosen][lab]["f1"], per[BASELINE][lab]["f1"] if BASELINE in per else None)
            for lab in r.labels]
    return sorted(rows, key=lambda r: r[1])[:n]


def _vs_baseline(f1: float, base: float | None) -> str:
    return f"F1 {f1:.3f}" + (f" (baseline {base:.3f})" if base is not None else "")


def rare_labels_text(r: "RunResult") -> str:
    rare = [lab for lab in r.labels if r.label_support[lab] < RARE_ROWS]
    if not rare:
        return f"  every label has at least {RARE_ROWS} rows."
    per, chosen = r.per_label, r.shipped_variant
    return "\n".join(
        f"  - **{lab}** ({r.label_support[lab]} rows): out-of-fold "
        + _vs_baseline(per[chosen][lab]["f1"], per[BASELINE][lab]["f1"] if BASELINE in per else None)
        for lab in rare)


def threshold_text(r: "RunResult") -> str:
    d = r.decision
    text = f"Thresholds as configured (global {d.threshold}); no tuning." if not d.tune_thresholds else (
        "Per-label thresholds maximise the micro-F1 of all labels on out-of-fold scores (coordinate ascent from "
        "the configured thresholds); *shrunk* thresholds keep n / (n + tune_min_support) of each label's tuned "
        "move (n = its positives). Both are cross-fitted: fold k is scored with thresholds chosen on the other "
        "folds' rows only, so their figures are not optimistic. A candidate is adopted only when it beats the "
        "configured thresholds by more than the fold-to-fold noise; the final model carries the adopted rule, "
        "chosen on all out-of-fold scores the same way as in the folds."
    )
    text += f"\n\n**Shipped rule: {r.decision_rule.chosen}.** Why: {r.decision_rule.reason}."
    if r.label_groups:
        from jobtitles.core.label_groups import LabelGroup, describe

        groups = describe([LabelGroup.from_json(g) for g in r.label_groups])
        used = "used by the shipped rule" if r.label_groups_used else "not used (did not win)"
        text += (f"\n\nLabel groups ({used}): {groups}. With groups, each exactly-one group takes its top label "
                 "and each at-most-one group its top label if it passes its threshold.")
    if d.exclusive_label:
        text += (f"\n\n`{d.exclusive_label}` (the label of rows without one) is exclusive: it is never decided "
                 "together with another label; where both pass, the higher score wins.")
    notes = r.threshold_notes
    if notes:
        text += "\n\n" + "\n".join(f"- {lab}: {note}" for lab, note in notes.items())
    return text


def sources_text(r: "RunResult") -> str:
    choice = r.score_sources
    if not choice:
        return "Every label is scored by the transformer (`score_sources: transformer` or no baseline)."
    f1 = choice.fold_macro_f1
    text = (f"Each label may take its score from the TF-IDF baseline or the mean of both instead of the transformer, "
            f"only where its own F1 gain on the other folds' rows is larger than its fold-to-fold noise (chosen per "
            f"fold, label by label). Cross-fitted macro-F1 at the configured thresholds: transformer "
            f"{sum(f1['transformer']) / len(f1['transformer']):.4f}, per-label sources "
            f"{sum(f1['per_label']) / len(f1['per_label']):.4f}. "
            f"**{sources_verdict(choice)}**: {choice.reason}.")
    if choice.adopted:
        text += ("\n\nThe model folder holds the baseline fitted on all rows (`baseline.skops`); `TitleClassifier`, "
                 "`predict.py` and every backend apply it to these labels. `pipeline(...)` returns the transformer's "
                 "scores only.")
    return text


def sources_verdict(choice) -> str:
    if choice.adopted:
        return "Adopted"
    # the rule would ship other sources, the settings keep the transformer: a measurement, not a rejection
    return "Measured, not applied" if choice.not_applied else "Not adopted"


def final_text(r: "RunResult") -> str:
    check = r.final_fit_check
    if check is None:
        return "Not trained yet (or `final_model: false`)."
    m = check.train_rows
    verdict = ("as expected" if check.ok else
               "**below what the fold models reached on unseen rows: its training went wrong; rerun with another "
               "seed before using it**")
    averaged = (f" Its weights are the uniform average of the weights of {r.averaged_models - 1} fold models and the "
                "final model (`fold_average`); the cross-validated figures are those of the fold models, the check "
                "here is of the average." if r.averaged_models else "")
    judged = (f"On a stratified sample of {check.n_rows} of its training rows (every row of its rare labels "
              "included)" if check.n_rows and check.n_rows < final_rows(r) else "On its own training rows")
    return (f"Trained on all {final_rows(r)} titles.{averaged} {judged}, with the saved thresholds: "
            f"micro-F1 {m['micro_f1']:.4f}, subset accuracy {m['subset_accuracy']:.4f} ({verdict}; expected at "
            f"least {check.expected_min_micro_f1:.4f}).")


def _label_issues_text(issues: "LabelIssues | None") -> str:
    if issues is None:
        return ""
    from jobtitles.reporting.label_issues import report_section

    return f"\n{report_section(issues)}"


def _pr_text(r: "RunResult") -> str:
    from jobtitles.reporting.plots import PR_PREFIX

    pics = [f"![{name}]({path})" for name, path in r.plots.items() if path.startswith(PR_PREFIX)]
    if not pics:
        return "Not drawn: this result carries no per-row gold labels."
    return ("One curve per label, from the out-of-fold scores the shipped rule decides on (a label marked "
            "(TF-IDF) or (blend) is scored by the baseline or the mean of both, see Score sources). The dot is the "
            "shipped threshold applied to that label's score alone; at_least_one, group decoding and the per-fold "
            "(cross-fitted) thresholds make the per-label table's figures differ slightly.\n\n" + "\n".join(pics))


def _error_sections(r: "RunResult") -> str:
    """The mistakes, the confusion view and the precision-recall curves."""
    from jobtitles.reporting.mistakes import confusion_section, mistakes_section

    return (f"{mistakes_section(r)}\n\n{confusion_section(r)}\n\n"
            f"## Precision-recall per label (out-of-fold)\n\n{_pr_text(r)}")


def _previous_text(r: "RunResult") -> str:
    """One line after the data's: what changed since the finished run of the folder this run replaced."""
    return f"{r.previous_run.report_line()}\n" if r.previous_run is not None else ""


def render_report(r: "RunResult", issues: "LabelIssues | None" = None) -> str:
    """report.md; `issues`: the label-issue finder's rows, when it ran (its top rows get a section)."""
    from jobtitles.reporting.plots import PR_PREFIX

    pics = "\n".join(f"![{name}]({path})" for name, path in r.plots.items() if not path.startswith(PR_PREFIX))
    base = f"\nBaseline: {r.baseline_name}, same folds.\n" if r.baseline_name else ""
    d = r.decision
    return f"""# Cross-validation report

Data: `{r.train_file}`, {r.n_rows} titles used ({r.n_dropped} rows dropped, see
`dropped_rows.csv`), {len(r.labels)} labels, {r.n_splits}-fold MultilabelStratifiedKFold. {rows_line(r)}
{_previous_text(r)}Model: `{r.model_name_or_path}`. Decision rule: threshold {d.threshold}, at_least_one={d.at_least_one},
pos_weight={d.pos_weight}{f"; rare-label rows repeated (repeat_factor_threshold={d.repeat_factor_threshold:g})" if d.repeat_factor_threshold else ""}; head initialised by {r.head_init}; loss {r.group_loss}; trained in
{r.precision.get('name', 'fp32')}.
{base}
## Metrics (mean ± std over folds, test splits)

{objective_note(r)}{metric_table(r)}

## Per label (out-of-fold, all rows)

{label_table(r)}

## Thresholds

{threshold_text(r)}

## Score sources

{sources_text(r)}

## Final model

{final_text(r)}

## Labels missing from test folds

{missing_text(r)}

## Per fold

Folds are numbered from 1, here and in the plots; fold k's files are in `folds/fold_<k − 1>/` (its index in
`folds.json` and `cv_results.json`).

{fold_table(r)}

{_error_sections(r)}

## Time budget

{budget_text(r)}

## Where the time went

{time_table(r)}

## Plots

{pics}

Every row's out-of-fold prediction is in `oof_predictions.csv` (`correct` = 0 marks the mistakes).
{_label_issues_text(issues)}
"""


def console_table(r: "RunResult") -> str:
    variants = [v for v in (CONFIGURED.variant, r.shipped_variant, BASELINE) if v in r.summary]
    variants = list(dict.fromkeys(variants))
    lines = [f"{'metric':<18}" + "".join(f"{short_name(v):>22}" for v in variants)]
    for m in headline_metrics(r):
        lines.append(f"{m:<18}" + "".join(f"{fmt(r.summary[v][m]):>22}" for v in variants))
    weak = ", ".join(f"{lab} {_vs_baseline(f1, base)}" for lab, f1, base in weakest_labels(r))
    lines.append(f"\nshipped rule: {r.decision_rule.chosen} thresholds; "
                 f"weakest labels: {weak}")
    return "\n".join(lines)
