"""The result of a training run, immutable: built by cross-validation (`cv_summary.summarize`), extended with
`dataclasses.replace` by the final model (`final.train_final`) and the end of the run (label issues, plots,
total time), rendered by report.md, the model card, the plots and the console, and saved once as
cv_results.json (its JSON form)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from jobtitles.selection.candidates import MEAN_OBJECTIVE, ORDER, fold_key
from jobtitles.core.decision_rule import DecisionRule
from jobtitles.core.label_groups import LabelGroup
from jobtitles.core.scoring import Scoring, source_list

if TYPE_CHECKING:
    from jobtitles.train.previous_run import PreviousRun

Metrics = dict[str, float]  # metric name -> value (metrics.METRICS)
MeanStd = dict[str, dict[str, float]]  # metric name -> {"mean": ..., "std": ...} over folds


@dataclass(frozen=True)
class DecisionSettings:
    """The decision settings of the run's config, as the report states them."""

    threshold: float
    label_thresholds: dict[str, float] | None
    tune_thresholds: bool
    tune_min_support: int
    at_least_one: bool
    pos_weight: str
    exclusive_label: str | None  # the empty label, decided alone
    repeat_factor_threshold: float = 0.0  # records of older versions: off


@dataclass(frozen=True)
class RuleSummary:
    """Which decision rule the model ships with (decisions.RuleChoice without its arrays)."""

    chosen: str  # the shipped candidate's key (candidates.Candidate.key, e.g. "tuned+groups")
    variant: str  # its key in `RunResult.summary` / `per_label`
    reason: str
    gain: float
    noise: float
    fold_micro_f1: dict[str, list[float]]
    fold_subset_accuracy: dict[str, list[float]]
    objective: str = MEAN_OBJECTIVE  # what the chooser maximised (older records: the mean)


@dataclass(frozen=True)
class SourcesSummary:
    """The per-label score-source choice (score_sources.SourceChoice without its arrays)."""

    adopted: bool
    reason: str
    sources: dict[str, str]  # label -> transformer | baseline | blend
    fold_macro_f1: dict[str, list[float]]
    fold_micro_f1: dict[str, list[float]]
    not_applied: bool = False  # measured and adopted by the rule, not applied (score_sources: transformer)

    def shipped(self) -> dict[str, str]:
        """Labels the final model scores with the baseline or the blend (empty: the transformer only)."""
        return {lab: src for lab, src in self.sources.items() if src != "transformer"} if self.adopted else {}


@dataclass(frozen=True)
class Timing:
    cv_seconds: float
    fold_train_seconds: list[float]
    baseline_seconds: float | None
    final_train_seconds: float | None = None
    total_seconds: float | None = None
    parts: dict[str, float] = field(default_factory=dict)  # part of the run -> wall seconds (part_times.py)


@dataclass(frozen=True)
class FitCheck:
    """The final model scored on its own training rows with the saved decision rule."""

    train_rows: Metrics
    expected_min_micro_f1: float
    ok: bool
    label_recall: dict[str, float]
    n_rows: int = 0  # training rows judged (all, or a large set's sample); 0: a record of an older version


@dataclass(frozen=True)
class FoldRecord:
    """One fold of the run: its sizes, its training record, and each report row's figures on its test split."""

    fold: int
    n_train: int
    n_test: int
    train_metrics: Metrics | None  # the fold model on its own training split (report_train_metrics)
    train_seconds: float
    loss_history: list[dict[str, Any]]
    thresholds: dict[str, dict[str, float]]  # candidate base ("tuned", "shrunk") -> label -> threshold
    metrics: dict[str, Metrics]  # report row (candidates.ORDER: "model_tuned_groups", "baseline") -> figures
    steps: int | None = None  # optimizer steps the fold model trained

    def to_json(self) -> dict[str, Any]:
        """The fold's record in cv_results.json: one flat mapping ("test_tuned_groups", "thresholds_tuned")."""
        out: dict[str, Any] = {"fold": self.fold, "n_train": self.n_train, "n_test": self.n_test,
                               "train": self.train_metrics, "train_seconds": self.train_seconds,
                               "loss_history": self.loss_history, "steps": self.steps}
        out.update({f"thresholds_{base}": t for base, t in self.thresholds.items()})
        out.update({fold_key(variant): m for variant, m in self.metrics.items()})
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "FoldRecord":
        variants = {fold_key(v): v for v in ORDER}
        return cls(fold=d["fold"], n_train=d["n_train"], n_test=d["n_test"], train_metrics=d.get("train"),
                   train_seconds=d["train_seconds"], loss_history=d.get("loss_history") or [], steps=d.get("steps"),
                   thresholds={k.removeprefix("thresholds_"): v for k, v in d.items() if k.startswith("thresholds_")},
                   metrics={variants[k]: v for k, v in d.items() if k in variants})


@dataclass(frozen=True)
class LabelIssuesSummary:
    """The counts of the label-issue finder (the rows themselves are in label_issues.csv, `file`)."""

    ranked: bool  # cleanlab's ranking ran
    note: str | None  # one line when the ranking is off or was skipped, and why
    n_rows: int
    n_flagged: int
    n_model_flagged: int
    n_conflict_rows: int
    n_conflict_titles: int
    file: str  # its name in the run folder, not a path: the same inputs give the same cv_results.json anywhere


@dataclass(frozen=True)
class PipelineGap:
    """What a plain transformers `pipeline` user (the Hub widget, Inference Endpoints, TEI) gets differently
    from the measured model: the labels it scores otherwise (another source than the transformer, or a sigmoid
    where the group was trained with a softmax), and on how many of the out-of-fold titles the shipped rule gives
    the same label set from the pipeline's scores."""

    sources: dict[str, str]  # label -> baseline | blend | softmax
    agreement: float  # share of rows with the same label set
    n_rows: int
    # per label: Jaccard index of the out-of-fold titles the two give it (empty in records of older versions)
    label_jaccard: dict[str, float] = field(default_factory=dict)
    # the same two figures on the final model's own training titles (None until the final model is trained)
    train_agreement: float | None = None
    train_label_jaccard: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "PipelineGap":
        """From a record of any version: keys it does not know are left out, missing ones take their defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def line(self) -> str:
        from jobtitles.core.model_folder import PIPELINE_GAP_KEY, pipeline_gap_line

        return str(pipeline_gap_line({PIPELINE_GAP_KEY: dataclasses.asdict(self)}))


@dataclass(frozen=True, eq=False)
class OofRows:
    """The rows the out-of-fold arrays describe, in their order: the report lists and counts its mistakes and
    draws its precision-recall curves from them (kept out of cv_results.json, like the arrays)."""

    rows: tuple[int, ...]  # spreadsheet row of the user's file (header = row 1)
    titles: tuple[str, ...]
    gold: np.ndarray  # rows x labels, 1 = the label is given


@dataclass(frozen=True)
class RunResult:
    labels: list[str]
    label_support: dict[str, int]
    n_rows: int
    n_dropped: int
    n_splits: int
    train_file: str
    model_name_or_path: str
    decision: DecisionSettings
    decision_rule: RuleSummary
    label_groups: list[dict[str, Any]]  # label_groups.LabelGroup.to_json() of the detected or configured groups
    label_groups_used: bool
    score_sources: SourcesSummary | None
    head_init: str
    group_loss: str
    precision: dict[str, str]  # training.Precision as a dict
    thresholds: dict[str, float]  # the shipped thresholds
    threshold_notes: dict[str, str]
    summary: dict[str, MeanStd]  # variant ("model", "model_tuned", ..., "baseline", "model_train") -> figures
    per_label: dict[str, dict[str, dict[str, float]]]  # variant -> label -> precision/recall/f1/support
    missing_labels: dict[str, list[int]]  # label -> test folds without a positive row
    folds: list[FoldRecord]
    baseline_name: str | None
    timing: Timing
    plots: dict[str, str] = field(default_factory=dict)
    label_issues: LabelIssuesSummary | None = None
    final_fit_check: FitCheck | None = None
    final_loss_history: list[dict[str, Any]] | None = None
    final_steps: int | None = None  # optimizer steps the final model trained
    averaged_models: int = 0  # fold_average: the fold models + the final model whose weights were averaged; 0: none
    complete: bool = False  # set when the run finished: a rerun of the same command then changes nothing
    pipeline_gap: PipelineGap | None = None  # set when a plain pipeline shows some labels' scores otherwise
    plan: dict[str, Any] | None = None  # a time budget's plan (budget.Plan.to_json); None without a budget
    # the finished run of the folder this run replaced (run_info.json previous_run): the folder's history, not a
    # result of the inputs, so kept out of cv_results.json
    previous_run: PreviousRun | None = field(default=None, metadata={"json": False})
    # out-of-fold arrays, written to oof_predictions.csv rather than to the JSON
    oof_scores: np.ndarray | None = field(default=None, repr=False, metadata={"json": False})
    oof_predictions: np.ndarray | None = field(default=None, repr=False, metadata={"json": False})
    oof_rows: OofRows | None = field(default=None, repr=False, metadata={"json": False})

    @property
    def shipped_variant(self) -> str:
        return self.decision_rule.variant

    def shipped_sources(self) -> dict[str, str]:
        return self.score_sources.shipped() if self.score_sources else {}

    def pipeline_differences(self) -> dict[str, str]:
        """Labels whose score a plain transformers pipeline (a sigmoid per logit) does not show as shipped: label ->
        baseline | blend (another source) or softmax (its group was trained with one)."""
        out = dict(self.shipped_sources())
        for group in self.shipped_scoring().softmax_groups:
            out.update({lab: "softmax" for lab in group.labels if lab not in out})
        return {lab: out[lab] for lab in self.labels if lab in out}

    def shipped_rule(self) -> DecisionRule:
        """The rule the model folder carries (and the fit check scores)."""
        groups = [LabelGroup.from_json(g) for g in self.label_groups] if self.label_groups_used else []
        return DecisionRule(tuple(self.labels), tuple(float(self.thresholds[lab]) for lab in self.labels),
                            self.decision.at_least_one, self.decision.exclusive_label, tuple(groups))

    def shipped_scoring(self) -> Scoring:
        softmax = [LabelGroup.from_json(g) for g in self.label_groups] if self.group_loss == "softmax" else []
        return Scoring(tuple(self.labels), tuple(softmax), tuple(source_list(self.labels, self.shipped_sources())))

    def to_json(self) -> dict[str, Any]:
        skip = {f.name for f in dataclasses.fields(self) if f.metadata.get("json") is False}
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in skip}
        out["folds"] = [f.to_json() for f in self.folds]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RunResult":
        """cv_results.json back to a result (a finished run's rerun shows its figures from it)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values.setdefault("group_loss", "bce")  # results of runs made before these settings existed
        values.setdefault("precision", {})
        values["decision"] = DecisionSettings(**d["decision"])
        values["decision_rule"] = RuleSummary(**d["decision_rule"])
        values["timing"] = Timing(**d["timing"])
        if d.get("score_sources"):
            values["score_sources"] = SourcesSummary(**d["score_sources"])
        values["folds"] = [FoldRecord.from_json(f) for f in d["folds"]]
        if d.get("label_issues"):  # runs made before the summary was typed also kept its rendered text
            names = {f.name for f in dataclasses.fields(LabelIssuesSummary)}
            values["label_issues"] = LabelIssuesSummary(**{k: v for k, v in d["label_issues"].items() if k in names})
        if d.get("final_fit_check"):
            values["final_fit_check"] = FitCheck(**d["final_fit_check"])
        if d.get("pipeline_gap"):
            values["pipeline_gap"] = PipelineGap.from_json(d["pipeline_gap"])
        return cls(**values)


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
