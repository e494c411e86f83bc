"""PNG plots linked from report.md: per-label F1 (model vs baseline), label frequencies, per-fold metrics,
training loss per fold."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jobtitles.selection.candidates import BASELINE, ORDER, TRAIN, title  # noqa: E402
from jobtitles.selection.run_result import RunResult  # noqa: E402


def _save(fig, path: Path) -> None:
    from jobtitles.core.io_utils import atomic_path

    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:  # a full disk names the file; a killed run's temporary is cleaned on resume
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


def write_plots(run_dir: Path, r: RunResult) -> dict[str, str]:
    out_dir = run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = r.labels
    made = {}

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    per = r.per_label
    chosen = r.shipped_variant
    pos = np.arange(len(labels))
    ax.barh(pos - 0.2, [per[chosen][lab]["f1"] for lab in labels], height=0.4, label="transformer")
    if BASELINE in per:
        ax.barh(pos + 0.2, [per[BASELINE][lab]["f1"] for lab in labels], height=0.4, label="TF-IDF baseline")
    ax.set_yticks(pos, labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("out-of-fold F1")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    _save(fig, out_dir / "per_label_f1.png")
    made["per-label F1"] = "plots/per_label_f1.png"

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    ax.barh(pos, [r.label_support[lab] for lab in labels])
    ax.set_yticks(pos, labels)
    ax.set_xscale("log")
    ax.set_xlabel("rows with the label (log scale)")
    _save(fig, out_dir / "label_frequencies.png")
    made["label frequencies"] = "plots/label_frequencies.png"

    # every row the report compares, fold by fold: each candidate rule and the baseline
    fig, (ax_f1, ax_exact) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    folds = [f.fold + 1 for f in r.folds]
    for variant in (v for v in ORDER if v != TRAIN and v in r.folds[0].metrics):
        style = {"linewidth": 2.5} if variant == r.shipped_variant else {"linewidth": 1, "alpha": 0.8}
        name = title(variant) + (" (shipped)" if variant == r.shipped_variant else "")
        ax_f1.plot(folds, [f.metrics[variant]["micro_f1"] for f in r.folds], marker="o", label=name, **style)
        ax_exact.plot(folds, [f.metrics[variant]["subset_accuracy"] for f in r.folds], marker="s", **style)
    ax_f1.set(xticks=folds, xlabel="fold", title="micro-F1")
    ax_exact.set(xticks=folds, xlabel="fold", title="subset accuracy")
    fig.legend(loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.32)
    _save(fig, out_dir / "per_fold_metrics.png")
    made["per-fold metrics"] = "plots/per_fold_metrics.png"

    fig, ax = plt.subplots(figsize=(8, 4))
    for f in r.folds:
        if f.loss_history:
            ax.plot([h["step"] for h in f.loss_history], [h["loss"] for h in f.loss_history], label=f"fold {f.fold + 1}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    if ax.lines:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no loss logged (fewer steps than logging_steps)", ha="center", transform=ax.transAxes)
    _save(fig, out_dir / "training_loss.png")
    made["training loss"] = "plots/training_loss.png"
    return made
