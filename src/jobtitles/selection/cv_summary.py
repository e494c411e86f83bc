"""From the folds' test scores to the run's figures: out-of-fold assembly, the baseline and the per-label score
sources, the cross-fitted decision rule, and the metrics of every candidate rule, in one `RunResult`."""

from __future__ import annotations

import dataclasses

import time
from dataclasses import dataclass

import numpy as np
from transformers import TrainingArguments

from jobtitles.core.baseline import BASELINE_NAME, baseline_scores
from jobtitles.selection.candidates import BASELINE, CONFIGURED, TRAIN, Candidate
from jobtitles.train.project_args import ProjectArgs
from jobtitles.core.data import LabeledData
from jobtitles.core.decision_rule import DecisionRule
from jobtitles.selection.decisions import RuleChoice, candidate_rules, choose_rule, decide_per_fold, fold_metrics
from jobtitles.train.folds import missing_labels
from jobtitles.core.label_groups import softmax_groups
from jobtitles.core.metrics import label_agreement, mean_std, per_label_metrics
from jobtitles.selection.run_result import (DecisionSettings, FoldRecord, OofRows, PipelineGap, RuleSummary, RunResult,
                                           SourcesSummary, Timing)
from jobtitles.selection.score_sources import SourceChoice, choose_sources

Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class FoldOutput:
    """What one fold's training leaves: its test rows' scores and its training record."""

    test_scores: np.ndarray
    train_metrics: dict[str, float] | None
    train_seconds: float
    loss_history: list[dict]
    head_seconds: float | None = None  # the model and its linear-probe head
    score_seconds: float | None = None  # scoring its test rows (and its training rows, report_train_metrics)
    steps: int | None = None  # optimizer steps trained (fewer than planned when a time budget stopped it)
    # a plain pipeline's scores of the test rows (sigmoids), kept only where they differ: group_loss softmax
    plain_scores: np.ndarray | None = None


def out_of_fold(folds: Folds, outputs: list[FoldOutput], shape: tuple[int, int], plain: bool = False) -> np.ndarray:
    """Every row's score from the one model that did not train on it (plain: as a plain pipeline shows it)."""
    oof = np.zeros(shape, dtype=np.float64)
    for (_, test), out in zip(folds, outputs):
        oof[test] = out.plain_scores if plain and out.plain_scores is not None else out.test_scores
    return oof


def candidate_decisions(oof: np.ndarray, folds: Folds, choice: RuleChoice, configured: DecisionRule,
                        groups) -> dict[str, np.ndarray]:
    """Out-of-fold decisions of every candidate rule the choice evaluated, by summary key."""
    out = {}
    for key in choice.fold_micro_f1:
        c = Candidate.from_key(key)
        rules = candidate_rules(configured, choice.fold_thresholds[c.base], groups if c.grouped else ())
        out[c.variant] = decide_per_fold(oof, folds, rules)
    return out


def summarize(data: LabeledData, folds: Folds, outputs: list[FoldOutput], project: ProjectArgs,
              training: TrainingArguments, cv_seconds: float, precision: dict[str, str]) -> RunResult:
    labels, y = data.labels, data.y
    oof = out_of_fold(folds, outputs, y.shape)
    configured = project.configured_rule(labels)
    base_scores, baseline_seconds, sources = None, None, None
    if project.run.baseline:  # the TF-IDF baseline on the same folds; optionally a per-label score source
        t0 = time.perf_counter()
        base_scores = baseline_scores(data.titles, y, folds, seed=training.seed)
        baseline_seconds = time.perf_counter() - t0
        softmax = softmax_groups(project.model.group_loss, data.groups, labels) or []
        sources = choose_sources(oof, base_scores, y, folds, configured,
                                 frozenset(int(j) for cols, _ in softmax for j in cols))
        if project.decision.score_sources == "transformer":  # measured and reported, not applied
            sources = sources.declined(oof)
        oof = sources.scores  # the transformer's own scores unless the per-label rule was adopted
    rule = choose_rule(oof, y, folds, configured, data.groups, project.decision.tune_min_support,
                       project.decision.tune_thresholds)
    variants = candidate_decisions(oof, folds, rule, configured, data.groups)
    if base_scores is not None:  # decoded with the shipped rule's structure, at 0.5: like for like
        variants[BASELINE] = decide_per_fold(base_scores, folds, rule.rule.with_thresholds(np.full(len(labels), 0.5)))
    per_fold = fold_records(folds, outputs, variants, rule, y, labels)
    summary = {name: mean_std([f.metrics[name] for f in per_fold]) for name in variants}
    if project.run.report_train_metrics:
        summary[TRAIN] = mean_std([f.train_metrics for f in per_fold])
    chosen = Candidate.from_key(rule.chosen).variant
    result = RunResult(
        labels=labels, label_support=dict(zip(labels, y.sum(axis=0).astype(int).tolist())),
        n_rows=len(y), n_dropped=len(data.dropped), n_splits=len(folds), train_file=str(project.data.train_file),
        model_name_or_path=project.model.model_name_or_path,
        decision=DecisionSettings(
            threshold=project.decision.decision_threshold, label_thresholds=project.decision.label_threshold_map(),
            tune_thresholds=project.decision.tune_thresholds, tune_min_support=project.decision.tune_min_support,
            at_least_one=project.decision.at_least_one, pos_weight=project.model.pos_weight,
            exclusive_label=configured.exclusive_label,
            repeat_factor_threshold=project.model.repeat_factor_threshold),
        decision_rule=RuleSummary(chosen=rule.chosen, variant=chosen, reason=rule.reason, gain=rule.gain,
                                  noise=rule.noise, fold_micro_f1=rule.fold_micro_f1,
                                  fold_subset_accuracy=rule.fold_subset_accuracy, objective=rule.objective),
        label_groups=[g.to_json() for g in data.groups], label_groups_used=bool(rule.rule.groups),
        score_sources=sources_summary(sources, labels),
        head_init=project.model.head_init,
        group_loss="softmax" if softmax_groups(project.model.group_loss, data.groups, labels) else "bce",
        precision=precision,
        thresholds=rule.rule.threshold_map, threshold_notes=rule.notes,
        summary=summary, per_label={name: per_label_metrics(y, pred, labels) for name, pred in variants.items()},
        missing_labels=missing_labels(y, folds, labels), folds=per_fold,
        baseline_name=BASELINE_NAME if project.run.baseline else None,
        timing=Timing(cv_seconds=cv_seconds, fold_train_seconds=[o.train_seconds for o in outputs],
                      baseline_seconds=baseline_seconds),
        oof_scores=oof, oof_predictions=variants[chosen],
        oof_rows=OofRows(tuple(data.rows), tuple(data.titles), y),
    )
    plain = out_of_fold(folds, outputs, y.shape, plain=True)  # what a plain pipeline shows of the same models
    return dataclasses.replace(result, pipeline_gap=pipeline_gap(result, plain))


def pipeline_gap(result: RunResult, plain: np.ndarray) -> PipelineGap | None:
    """None when a plain pipeline shows the shipped scores; else the labels it scores otherwise (another source,
    or a sigmoid where a group was trained with a softmax), and how often the shipped rule's label sets from the
    pipeline's out-of-fold scores equal those from the shipped scores."""
    differ = result.pipeline_differences()
    if not differ or result.oof_scores is None:
        return None
    rule = result.shipped_rule()
    same, jaccard = label_agreement(rule.decide(plain), rule.decide(result.oof_scores), result.labels)
    return PipelineGap(differ, same, len(plain), jaccard)


def fold_records(folds: Folds, outputs: list[FoldOutput], variants: dict[str, np.ndarray], rule: RuleChoice,
                 y: np.ndarray, labels: list[str]) -> list[FoldRecord]:
    """Per fold: sizes, training record, each variant's test metrics and the thresholds it was scored with."""
    metrics = {name: fold_metrics(y, pred, folds) for name, pred in variants.items()}
    return [FoldRecord(fold=k, n_train=len(train), n_test=len(test), train_metrics=out.train_metrics,
                       train_seconds=out.train_seconds, loss_history=out.loss_history, steps=out.steps,
                       thresholds={base: dict(zip(labels, per_fold[k].tolist()))
                                   for base, per_fold in rule.fold_thresholds.items() if base != CONFIGURED.base},
                       metrics={name: per_fold[k] for name, per_fold in metrics.items()})
            for k, ((train, test), out) in enumerate(zip(folds, outputs))]


def sources_summary(sources: SourceChoice | None, labels: list[str]) -> SourcesSummary | None:
    if sources is None:
        return None
    return SourcesSummary(adopted=sources.adopted, reason=sources.reason, sources=dict(zip(labels, sources.sources)),
                          fold_macro_f1=sources.fold_macro_f1, fold_micro_f1=sources.fold_micro_f1,
                          not_applied=sources.not_applied)
