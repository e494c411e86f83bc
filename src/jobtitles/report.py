"""Render cv_results.json as Markdown (report.md, model card) and as a console table. Numbers are only read
from the results dict here, never recomputed, so every view shows the same figures."""

from __future__ import annotations

from jobtitles.metrics import METRICS

NAMES = {"model": "transformer (threshold as configured)", "model_tuned": "transformer (tuned thresholds, cross-fitted)",
         "baseline": "TF-IDF + logistic regression baseline", "model_train": "transformer on its training splits"}
LOWER_IS_BETTER = {"hamming_loss"}


def fmt(cell: dict) -> str:
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


def metric_table(results: dict) -> str:
    variants = [v for v in ("model", "model_tuned", "baseline", "model_train") if v in results["summary"]]
    head = "| metric | " + " | ".join(NAMES[v] for v in variants) + " |"
    rule = "|---|" + "---|" * len(variants)
    lines = [head, rule]
    for m in METRICS:
        arrow = " (lower is better)" if m in LOWER_IS_BETTER else ""
        lines.append(f"| {m}{arrow} | " + " | ".join(fmt(results["summary"][v][m]) for v in variants) + " |")
    return "\n".join(lines)


def label_table(results: dict) -> str:
    per = results["per_label"]
    chosen = "model_tuned" if "model_tuned" in per else "model"
    has_base = "baseline" in per
    head = "| label | support | precision | recall | F1 | threshold |" + (" baseline F1 |" if has_base else "")
    lines = [head, "|---|---|---|---|---|---|" + ("---|" if has_base else "")]
    for lab in results["labels"]:
        m = per[chosen][lab]
        row = (f"| {lab} | {results['label_support'][lab]} | {m['precision']:.4f} | {m['recall']:.4f} | "
               f"{m['f1']:.4f} | {results['thresholds'][lab]:.2f} |")
        if has_base:
            row += f" {per['baseline'][lab]['f1']:.4f} |"
        lines.append(row)
    return "\n".join(lines)


def fold_table(results: dict) -> str:
    keys = [k for k in ("test", "test_tuned", "baseline") if k in results["folds"][0]]
    head = "| fold | train rows | test rows | " + " | ".join(f"{k} micro-F1 | {k} subset acc." for k in keys) + " |"
    lines = [head, "|---|---|---|" + "---|---|" * len(keys)]
    for f in results["folds"]:
        cells = " | ".join(f"{f[k]['micro_f1']:.4f} | {f[k]['subset_accuracy']:.4f}" for k in keys)
        lines.append(f"| {f['fold'] + 1} | {f['n_train']} | {f['n_test']} | {cells} |")
    return "\n".join(lines)


def missing_text(results: dict) -> str:
    missing = results["missing_labels"]
    if not missing:
        return "Every label has at least one positive row in every test fold."
    items = [f"- **{lab}**: no positive row in test fold(s) {', '.join(str(k + 1) for k in ks)} "
             f"({results['label_support'][lab]} rows in all); its per-fold scores there say nothing about it."
             for lab, ks in missing.items()]
    return "\n".join(items)


def threshold_text(results: dict) -> str:
    d = results["decision"]
    if not d["tune_thresholds"]:
        return f"Thresholds as configured (global {d['threshold']}); no tuning."
    text = (
        "Per-label thresholds maximise the micro-F1 of all labels on out-of-fold scores (coordinate ascent from "
        "the configured thresholds). The *tuned* CV figures are "
        "cross-fitted: fold k is scored with thresholds chosen on the other folds' rows only, so they are not "
        "optimistic. The final model carries thresholds tuned on all out-of-fold scores."
    )
    notes = results.get("threshold_notes") or {}
    if notes:
        text += "\n\n" + "\n".join(f"- {lab}: {note}" for lab, note in notes.items())
    return text


def final_text(results: dict) -> str:
    check = results.get("final_fit_check")
    if check is None:
        return "Not trained yet (or `final_model: false`)."
    m = check["train_rows"]
    verdict = ("as expected" if check["ok"] else
               "**below what the fold models reached on unseen rows: its training went wrong; rerun with another "
               "seed before using it**")
    return (f"Trained on all {results['n_rows']} titles. On its own training rows, with the saved thresholds: "
            f"micro-F1 {m['micro_f1']:.4f}, subset accuracy {m['subset_accuracy']:.4f} ({verdict}; expected at "
            f"least {check['expected_min_micro_f1']:.4f}).")


def render_report(results: dict) -> str:
    plots = results.get("plots", {})
    pics = "\n".join(f"![{name}]({path})" for name, path in plots.items())
    base = f"\nBaseline: {results['baseline_name']}, same folds.\n" if results.get("baseline_name") else ""
    d = results["decision"]
    return f"""# Cross-validation report

Data: `{results['train_file']}`, {results['n_rows']} titles used ({results['n_dropped']} rows dropped, see
`dropped_rows.csv`), {len(results['labels'])} labels, {results['n_splits']}-fold MultilabelStratifiedKFold.
Model: `{results['model_name_or_path']}`. Decision rule: threshold {d['threshold']}, at_least_one={d['at_least_one']},
pos_weight={d['pos_weight']}; head initialised by {results.get('head_init', 'random')}.
{base}
## Metrics (mean ± std over folds, test splits)

{metric_table(results)}

## Per label (out-of-fold, all rows)

{label_table(results)}

## Thresholds

{threshold_text(results)}

## Final model

{final_text(results)}

## Labels missing from test folds

{missing_text(results)}

## Per fold

{fold_table(results)}

## Plots

{pics}

Every row's out-of-fold prediction is in `oof_predictions.csv` (`correct` = 0 marks the mistakes).
"""


def console_table(results: dict) -> str:
    variants = [v for v in ("model", "model_tuned", "baseline") if v in results["summary"]]
    short = {"model": "model@thr", "model_tuned": "model tuned", "baseline": "tfidf+LR"}
    lines = [f"{'metric':<18}" + "".join(f"{short[v]:>22}" for v in variants)]
    for m in METRICS:
        lines.append(f"{m:<18}" + "".join(f"{fmt(results['summary'][v][m]):>22}" for v in variants))
    return "\n".join(lines)
