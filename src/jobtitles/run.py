"""The whole training job: CSV -> tokenized Dataset -> K folds -> out-of-fold scores -> decisions -> report ->
final model + card (+ Hub push). Each step is a function in its own module; this file only wires them."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from transformers import TrainingArguments

from jobtitles import outputs
from jobtitles.baseline import BASELINE_NAME, baseline_scores
from jobtitles.config import ProjectArgs
from jobtitles.data import LabeledData, load_labeled_csv
from jobtitles.decisions import choose_rule, decide, exclusive_index, threshold_vector
from jobtitles.label_groups import group_index
from jobtitles.report import fold_key
from jobtitles.score_sources import choose_sources
from jobtitles.errors import UserError, logger
from jobtitles.features import build_dataset, model_columns, tokenize_dataset
from jobtitles.folds import make_folds, missing_labels
from jobtitles.io_utils import read_json, save_npy, write_json
from jobtitles.metrics import mean_std, multilabel_metrics, per_label_metrics
from jobtitles.runstate import (RunLock, check_output_dir, fingerprint, git_commit, package_versions, prepare_run_dir,
                                resolved_config)
from jobtitles.training import (FoldRun, check_max_length, cpu_threads, fresh_model, load_tokenizer, resolve_precision,
                                run_args)

COMPLETE_KEY = "complete"


@dataclass
class FoldOutput:
    test_scores: np.ndarray
    train_metrics: dict[str, float] | None
    train_seconds: float
    loss_history: list[dict]


def load_data(project: ProjectArgs) -> LabeledData:
    return load_labeled_csv(
        project.train_file, text_column=project.text_column, label_prefix=project.label_column_prefix,
        delimiter=project.delimiter, encoding=project.encoding, empty_label=project.empty_label,
        empty_titles=project.empty_titles, merge_label_variants=project.merge_label_variants,
        n_splits=project.n_splits, max_rows=project.max_train_rows, label_groups=project.label_groups_spec(),
    )


def train_fold(k: int, train: np.ndarray, test: np.ndarray, ds, tokenizer, data: LabeledData,
               project: ProjectArgs, training: TrainingArguments, run_dir: Path) -> FoldOutput:
    args = run_args(training, run_dir / "folds" / f"fold_{k}", project.precision, len(train), project.min_train_steps)
    model = fresh_model(project.model_name_or_path, data.labels, training.seed + k, project.head_init,
                        project.probe_c, ds.select(train), data.y[train], tokenizer)
    fold = FoldRun(model, args, ds.select(train), tokenizer, data.y[train], project.pos_weight)
    fold.train()
    test_scores = fold.scores(ds.select(test))
    train_metrics = None
    if project.report_train_metrics:
        train_pred = decide(fold.scores(ds.select(train)), project.decision_threshold, project.at_least_one,
                            exclusive_index(data.labels, project.empty_label))
        train_metrics = multilabel_metrics(data.y[train], train_pred)
    return FoldOutput(test_scores, train_metrics, fold.train_seconds, fold.loss_history())


def save_fold(fold_dir: Path, out: FoldOutput) -> None:
    save_npy(fold_dir / "test_scores.npy", out.test_scores)
    # result.json last: its presence marks the fold as complete, so a rerun of the same command skips it
    write_json(fold_dir / "result.json", {"train_metrics": out.train_metrics, "train_seconds": out.train_seconds,
                                           "loss_history": out.loss_history})


def load_fold(fold_dir: Path) -> FoldOutput | None:
    if not (fold_dir / "result.json").is_file():
        return None
    res = read_json(fold_dir / "result.json")
    return FoldOutput(np.load(fold_dir / "test_scores.npy"), res["train_metrics"], res["train_seconds"],
                      res["loss_history"])


def cross_validate(project: ProjectArgs, training: TrainingArguments) -> Path:
    """Check every setting and the output folder, take the folder's lock, then run (or resume) the job."""
    if training.push_to_hub and not training.hub_model_id:  # say so before hours of training, not after
        raise UserError("push_to_hub is true but hub_model_id is not set; set hub_model_id: <user>/<repo>")
    state = PartialState()
    run_dir = Path(training.output_dir)
    if state.is_main_process:
        check_output_dir(run_dir)
    check_max_length(project.model_name_or_path, project.max_length)
    resolve_precision(project.precision)  # an impossible precision stops here, before any data is read
    with RunLock(run_dir) if state.is_main_process else contextlib.nullcontext():
        return _run(project, training, run_dir, state)


def check_data(data: LabeledData, project: ProjectArgs) -> None:
    """Checks that need the labels or the row count: before any fold trains, not after."""
    if len(data) < project.n_splits:
        raise UserError(f"{project.train_file}: {len(data)} usable rows, fewer than n_splits={project.n_splits}; "
                        f"add rows or lower n_splits (at least 2)")
    threshold_vector(data.labels, project.decision_threshold, project.label_threshold_map())


def _run(project: ProjectArgs, training: TrainingArguments, run_dir: Path, state: PartialState) -> Path:
    start = time.perf_counter()
    if not state.is_main_process:
        logger.setLevel(logging.WARNING)  # one copy of the progress messages
    if not torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
        torch.set_num_threads(cpu_threads(project.cpu_threads, local))
    precision = resolve_precision(project.precision)
    logger.info(f"{state.num_processes} process{'es' if state.num_processes > 1 else ''} on {state.device}"
                + ("" if torch.cuda.is_available() else f", {torch.get_num_threads()} threads each")
                + f"; training in {precision.name} ({precision.reason})")
    data = load_data(project)
    check_data(data, project)
    config = resolved_config(project, training)
    info = {"fingerprint": fingerprint(config, Path(project.train_file)), "config": config,
            "versions": package_versions(), "git_commit": git_commit(), "train_file": str(project.train_file),
            "precision": dataclasses.asdict(precision)}
    finished = False
    if state.is_main_process:
        if prepare_run_dir(run_dir, info, project.overwrite):
            finished = is_finished(run_dir)
            if not finished:
                logger.info(f"{run_dir} holds an earlier run with the same inputs: resuming it")
        if not finished:
            outputs.write_dropped(run_dir, data)
    finished = broadcast_flag(finished, state)
    if finished:
        return finished_run(run_dir, training, state)

    tokenizer = load_tokenizer(project.model_name_or_path)
    ds = model_columns(tokenize_dataset(build_dataset(data.titles, data.y, data.rows), tokenizer,
                                                 project.max_length, pad_to_max_length=project.pad_to_max_length))
    folds = make_folds(data.y, project.n_splits, project.cv_shuffle, training.seed)
    if state.is_main_process:
        write_json(run_dir / "folds.json", [{"fold": k, "train_rows": [data.rows[i] for i in tr],
                                              "test_rows": [data.rows[i] for i in te]}
                                             for k, (tr, te) in enumerate(folds)])
    fold_outputs: list[FoldOutput] = []
    for k, (train, test) in enumerate(folds):
        fold_dir = run_dir / "folds" / f"fold_{k}"
        done = load_fold(fold_dir)
        if done is not None:
            logger.info(f"fold {k} ({k + 1} of {len(folds)}): complete in {fold_dir}, skipped (resume)")
            fold_outputs.append(done)
            continue
        logger.info(f"fold {k} ({k + 1} of {len(folds)}): training on {len(train)} titles, testing on {len(test)}")
        out = train_fold(k, train, test, ds, tokenizer, data, project, training, run_dir)
        if state.is_main_process:
            save_fold(fold_dir, out)
        state.wait_for_everyone()
        fold_outputs.append(out)

    cv_seconds = time.perf_counter() - start
    results = None
    if state.is_main_process:
        results = summarize(data, folds, fold_outputs, project, training, cv_seconds)
        results["precision"] = dataclasses.asdict(precision)
        outputs.write_cv_outputs(run_dir, data, results, label_issues=project.label_issues)
    state.wait_for_everyone()
    if project.final_model:
        from jobtitles.final import train_final

        if results is None:
            results = read_json(run_dir / "cv_results.json")
        train_final(project, training, data, ds, tokenizer, results, run_dir, state)
    if state.is_main_process:
        results = read_json(run_dir / "cv_results.json")
        results["timing"]["total_seconds"] = time.perf_counter() - start
        results[COMPLETE_KEY] = True  # written last: a rerun of the same command then changes nothing
        write_json(run_dir / "cv_results.json", results)
        outputs.print_summary(results, run_dir)
    return run_dir


def is_finished(run_dir: Path) -> bool:
    path = run_dir / "cv_results.json"
    return path.is_file() and bool(read_json(path).get(COMPLETE_KEY))


def broadcast_flag(flag: bool, state: PartialState) -> bool:
    """The main process's decision, on every process (only the main one reads the run folder)."""
    if state.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    box = [flag]
    broadcast_object_list(box, from_process=0)
    return bool(box[0])


def finished_run(run_dir: Path, training: TrainingArguments, state: PartialState) -> Path:
    """A rerun of a finished run's command: say so, show its figures, write nothing (push only if asked)."""
    if state.is_main_process:
        logger.info(f"{run_dir} holds a finished run with the same inputs; nothing to do (its files are "
                    "unchanged; --overwrite starts over)")
        outputs.print_summary(read_json(run_dir / "cv_results.json"), run_dir)
        if training.push_to_hub and (run_dir / "model").is_dir():
            from jobtitles.final import push

            push(run_dir / "model", training)
    return run_dir


def variant_of(candidate: str) -> str:
    """'tuned+groups' -> 'model_tuned_groups' (summary key); 'configured' -> 'model'."""
    base, _, grouped = candidate.partition("+")
    return "model" + ("" if base == "configured" else f"_{base}") + ("_groups" if grouped else "")



def summarize(data: LabeledData, folds, fold_outputs: list[FoldOutput], project: ProjectArgs,
              training: TrainingArguments, cv_seconds: float) -> dict:
    """All figures of the run, computed once here; report.md, the card and the console only render them."""
    labels, y = data.labels, data.y
    oof = np.zeros(y.shape, dtype=np.float64)
    for (_, test), out in zip(folds, fold_outputs):
        oof[test] = out.test_scores
    default = threshold_vector(labels, project.decision_threshold, project.label_threshold_map())
    exclusive = exclusive_index(labels, project.empty_label)

    def decided(scores: np.ndarray, thresholds_per_fold: list[np.ndarray], grouped=None) -> np.ndarray:
        pred = np.zeros(y.shape, dtype=np.int8)
        for (_, test), thr in zip(folds, thresholds_per_fold):
            pred[test] = decide(scores[test], thr, project.at_least_one, exclusive, grouped)
        return pred

    per_fold = [{"fold": k, "n_train": len(train), "n_test": len(test), "train": out.train_metrics,
                 "train_seconds": out.train_seconds, "loss_history": out.loss_history}
                for k, ((train, test), out) in enumerate(zip(folds, fold_outputs))]
    base_scores, baseline_seconds, sources = None, None, None
    if project.baseline:
        t0 = time.perf_counter()
        base_scores = baseline_scores(data.titles, y, folds, seed=training.seed)
        baseline_seconds = time.perf_counter() - t0
        if project.score_sources == "auto":
            sources = choose_sources(oof, base_scores, y, folds, labels, default, project.at_least_one, exclusive)
            oof = sources.scores  # the transformer's own scores unless the per-label rule was adopted
    groups = group_index(data.groups, labels)
    rule = choose_rule(oof, y, folds, labels, default, project.tune_min_support, project.at_least_one, exclusive,
                       groups, tune=project.tune_thresholds)
    variants = {}
    for candidate in rule.fold_micro_f1:
        base, _, grouped = candidate.partition("+")
        variants[variant_of(candidate)] = decided(oof, rule.fold_thresholds[base], groups if grouped else None)
        if base != "configured" and not grouped:
            for k, thr in enumerate(rule.fold_thresholds[base]):
                per_fold[k][f"thresholds_{base}"] = dict(zip(labels, thr.tolist()))
    final_thresholds, notes = rule.thresholds, rule.notes
    if base_scores is not None:  # decoded with the shipped rule's structure, at 0.5: like for like
        variants["baseline"] = decided(base_scores, [np.full(len(labels), 0.5)] * len(folds),
                                       groups if rule.use_groups else None)
    for name, pred in variants.items():
        for k, (_, test) in enumerate(folds):
            per_fold[k][fold_key(name)] = multilabel_metrics(y[test], pred[test])
    summary = {name: mean_std([f[fold_key(name)] for f in per_fold]) for name in variants}
    if project.report_train_metrics:
        summary["model_train"] = mean_std([f["train"] for f in per_fold])
    chosen = variant_of(rule.chosen)
    support = y.sum(axis=0).astype(int)
    return {
        "labels": labels,
        "label_support": dict(zip(labels, support.tolist())),
        "n_rows": len(y), "n_dropped": len(data.dropped), "n_splits": len(folds),
        "train_file": str(project.train_file),
        "model_name_or_path": project.model_name_or_path,
        "decision": {"threshold": project.decision_threshold, "label_thresholds": project.label_threshold_map(),
                     "tune_thresholds": project.tune_thresholds, "tune_min_support": project.tune_min_support,
                     "at_least_one": project.at_least_one, "pos_weight": project.pos_weight,
                     "exclusive_label": labels[exclusive] if exclusive is not None else None},
        "decision_rule": {"chosen": rule.chosen, "variant": chosen, "reason": rule.reason, "gain": rule.gain,
                          "noise": rule.noise, "fold_micro_f1": rule.fold_micro_f1,
                          "fold_subset_accuracy": rule.fold_subset_accuracy},
        "label_groups": [g.to_json() for g in data.groups],
        "label_groups_used": rule.use_groups,
        "score_sources": None if sources is None else {
            "adopted": sources.adopted, "reason": sources.reason,
            "sources": dict(zip(labels, sources.sources)),
            "fold_macro_f1": sources.fold_macro_f1, "fold_micro_f1": sources.fold_micro_f1},
        "head_init": project.head_init,
        "thresholds": dict(zip(labels, np.asarray(final_thresholds).tolist())),
        "threshold_notes": notes,
        "summary": summary,
        "per_label": {name: per_label_metrics(y, pred, labels) for name, pred in variants.items()},
        "missing_labels": missing_labels(y, folds, labels),
        "folds": per_fold,
        "baseline_name": BASELINE_NAME if project.baseline else None,
        "timing": {"cv_seconds": cv_seconds, "fold_train_seconds": [o.train_seconds for o in fold_outputs],
                   "baseline_seconds": baseline_seconds},
        "_oof_scores": oof,
        "_pred": variants[chosen],
    }
