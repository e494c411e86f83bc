"""PNG plots linked from report.md: per-label F1 (model vs baseline), label frequencies, per-fold metrics,
training loss per fold, and a precision-recall curve per label. Each figure is built by its own function (so it
can be checked) and saved by `write_plots`. Folds are numbered from 1, as in report.md's tables."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from jobtitles.selection.candidates import BASELINE, ORDER, TRAIN, title  # noqa: E402
from jobtitles.selection.run_result import RunResult  # noqa: E402

SOURCE_SUFFIX = {"baseline": " (TF-IDF)", "blend": " (blend)"}  # labels not scored by the transformer alone
PR_PER_PAGE = 20  # precision-recall panels per file: plots/pr_curves_1.png, _2.png, ...
PR_COLUMNS = 4
PR_POINTS = 1000  # points drawn per curve: a panel is 300 pixels wide; 100,000 points cost seconds to save
PR_PREFIX = "plots/pr_curves_"


def _save(fig: Figure, path: Path) -> None:
    from jobtitles.core.io_utils import atomic_path

    if fig.get_layout_engine() is None:  # a figure with its own layout (constrained) keeps it
        fig.tight_layout()
    with atomic_path(path) as tmp:  # a full disk names the file; a killed run's temporary is cleaned on resume
        fig.savefig(tmp, dpi=110, format="png")


def source_names(r: RunResult) -> list[str]:
    """The labels as the plots name them: with " (TF-IDF)" or " (blend)" where the shipped model scores the
    label with the baseline or the mean of both."""
    sources = r.shipped_sources()
    return [lab + SOURCE_SUFFIX.get(sources.get(lab, "transformer"), "") for lab in r.labels]


def per_label_f1_figure(r: RunResult) -> Figure:
    labels, per, chosen = r.labels, r.per_label, r.shipped_variant
    fig = Figure(figsize=(8, 0.45 * len(labels) + 1.9))
    ax = fig.subplots()
    pos = np.arange(len(labels))
    ax.barh(pos - 0.2, [per[chosen][lab]["f1"] for lab in labels], height=0.4, label="model (shipped rule)")
    if BASELINE in per:
        ax.barh(pos + 0.2, [per[BASELINE][lab]["f1"] for lab in labels], height=0.4, label="TF-IDF baseline")
    ax.set_yticks(pos, source_names(r))
    ax.set_xlim(0, 1)
    ax.set_xlabel("out-of-fold F1")
    ax.set_ylabel("label (score source when not the transformer)")
    ax.set_title("Out-of-fold F1 per label")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)  # outside: bars reach 1.0
    return fig


def label_frequency_figure(r: RunResult) -> Figure:
    labels = r.labels
    fig = Figure(figsize=(8, 0.45 * len(labels) + 1.5))
    ax = fig.subplots()
    pos = np.arange(len(labels))
    ax.barh(pos, [r.label_support[lab] for lab in labels])
    ax.set_yticks(pos, labels)
    ax.set_xscale("log")
    ax.set_xlabel("rows with the label (log scale)")
    ax.set_ylabel("label")
    ax.set_title(f"Label frequencies ({r.n_rows} rows)")
    return fig


def per_fold_figure(r: RunResult) -> Figure:
    """Every row the report compares, fold by fold: each candidate rule and the baseline."""
    fig = Figure(figsize=(11, 4.8), layout="constrained")  # constrained: room for the figure legend below
    ax_f1, ax_exact = fig.subplots(1, 2, sharex=True)
    folds = [f.fold + 1 for f in r.folds]
    for variant in (v for v in ORDER if v != TRAIN and v in r.folds[0].metrics):
        style = {"linewidth": 2.5} if variant == r.shipped_variant else {"linewidth": 1, "alpha": 0.8}
        name = title(variant) + (" (shipped)" if variant == r.shipped_variant else "")
        ax_f1.plot(folds, [f.metrics[variant]["micro_f1"] for f in r.folds], marker="o", label=name, **style)
        ax_exact.plot(folds, [f.metrics[variant]["subset_accuracy"] for f in r.folds], marker="s", **style)
    ax_f1.set(xticks=folds, xlabel="fold", ylabel="micro-F1", title="micro-F1 on the test split")
    ax_exact.set(xticks=folds, xlabel="fold", ylabel="subset accuracy", title="subset accuracy on the test split")
    fig.suptitle("Per-fold test metrics")
    fig.legend(loc="outside lower center", ncol=2, fontsize=7, frameon=False)
    return fig


def training_loss_figure(r: RunResult) -> Figure:
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    for f in r.folds:
        if f.loss_history:
            ax.plot([h["step"] for h in f.loss_history], [h["loss"] for h in f.loss_history], label=f"fold {f.fold + 1}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss per fold")
    if ax.lines:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no loss logged (fewer steps than logging_steps)", ha="center", transform=ax.transAxes)
    return fig


def operating_point(gold: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray,
                                                                                      float, float]:
    """(precision, recall) of the curve, and the point of `threshold` on it (a row is positive at
    score >= threshold, as the decision rule has it)."""
    precision, recall, cuts = precision_recall_curve(gold, scores)
    k = int(np.searchsorted(cuts, threshold, side="left"))  # the first cut >= threshold; past the end: none
    return precision, recall, float(precision[k]), float(recall[k])


def _pr_panel(ax, gold: np.ndarray, scores: np.ndarray, threshold: float, name: str) -> None:
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=name)
    if not gold.any():  # every label has a positive row in a run; a hand-made result may not
        ax.text(0.5, 0.5, "no positive row", ha="center", transform=ax.transAxes)
        return
    precision, recall, p, rc = operating_point(gold, scores, threshold)
    keep = np.unique(np.linspace(0, len(recall) - 1, min(len(recall), PR_POINTS)).astype(int))
    ax.plot(recall[keep], precision[keep], drawstyle="steps-post", linewidth=1.2)
    ax.plot([rc], [p], "o", color="tab:red", label=f"score >= {threshold:.2f} alone: P {p:.2f}, R {rc:.2f}")
    ax.legend(loc="lower left", fontsize=7, frameon=False)


def pr_figure(r: RunResult, columns: list[int]) -> Figure:
    """Precision-recall curves of the given label columns, on the out-of-fold scores the shipped rule decides on,
    with the shipped threshold marked."""
    gold, scores = (np.asarray(r.oof_rows.gold) > 0.5), np.asarray(r.oof_scores, dtype=np.float64)
    names = source_names(r)
    n_rows = math.ceil(len(columns) / PR_COLUMNS)
    fig = Figure(figsize=(3 * PR_COLUMNS, 2.9 * n_rows + 0.6))
    axes = np.atleast_1d(fig.subplots(n_rows, PR_COLUMNS, squeeze=False)).ravel()
    for ax, j in zip(axes, columns):
        _pr_panel(ax, gold[:, j], scores[:, j], float(r.thresholds[r.labels[j]]), names[j])
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    fig.suptitle("Precision-recall per label (out-of-fold scores; dot: the shipped threshold on the score alone)")
    return fig


def pr_pages(n_labels: int, per_page: int = PR_PER_PAGE) -> list[list[int]]:
    """Label columns per precision-recall file."""
    return [list(range(s, min(s + per_page, n_labels))) for s in range(0, n_labels, per_page)]


def write_plots(run_dir: Path, r: RunResult) -> dict[str, str]:
    """Save every plot under run_dir/plots; {name in report.md: path relative to run_dir}."""
    out_dir = run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {"per-label F1": ("per_label_f1.png", per_label_f1_figure(r)),
               "label frequencies": ("label_frequencies.png", label_frequency_figure(r)),
               "per-fold metrics": ("per_fold_metrics.png", per_fold_figure(r)),
               "training loss": ("training_loss.png", training_loss_figure(r))}
    made = {}
    for name, (file, fig) in figures.items():
        _save(fig, out_dir / file)
        made[name] = f"plots/{file}"
    if r.oof_rows is not None and r.oof_scores is not None:
        for k, columns in enumerate(pr_pages(len(r.labels)), start=1):
            file = f"{PR_PREFIX.removeprefix('plots/')}{k}.png"
            _save(pr_figure(r, columns), out_dir / file)  # one at a time: a page of panels is the big figure
            made[f"precision-recall, labels {columns[0] + 1}-{columns[-1] + 1}"] = f"plots/{file}"
    return made
