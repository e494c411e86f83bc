"""The training job: check settings -> read the CSV -> K folds (each fold trained once, resumable) -> the run's
figures (cv_summary) -> final model + card (final) -> the run's files, written once (run_files). This module
only wires the steps and keeps the processes of a distributed run in step."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from transformers import TrainingArguments

from jobtitles.reporting import run_files
from jobtitles.train.project_args import ProjectArgs
from jobtitles.selection.cv_summary import FoldOutput, summarize
from jobtitles.core.data import LabeledData
from jobtitles.core.errors import UserError
from jobtitles.train.folds import make_folds
from jobtitles.train.hub import check_hub_settings, push
from jobtitles.core.io_utils import read_json, save_npy, write_json
from jobtitles.core.label_groups import softmax_groups
from jobtitles.core.log import logger
from jobtitles.core.metrics import multilabel_metrics
from jobtitles.train.previous_run import previous_run, recorded as recorded_previous
from jobtitles.train.run_folder import (RunLock, check_output_dir, fingerprint, git_commit, git_dirty, is_finished,
                                        machine, now_iso, package_versions, prepare_run_dir, record_finish,
                                        resolved_config)
from jobtitles.selection.run_result import RunResult
from jobtitles.core.tokenization import training_dataset
from jobtitles.train.hp_search import recipe_args
from jobtitles.train.weight_average import fold_model_dirs
from jobtitles.train.training import (FoldRun, Precision, check_max_length, cpu_threads, fresh_model, load_tokenizer,
                                resolve_precision, run_args)
from jobtitles.train.budget import Plan
from jobtitles.train.gpu_settings import on_gpu
from jobtitles.train.part_times import PartTimes
from jobtitles.train.plan_run import Schedule, announce, check_budget_settings, cv_sample, make_plan, saved_plan
from jobtitles.train.progress import choose_mode
from jobtitles.train.step_rule import capped_steps
from jobtitles.train.tracking import check_mlflow_store
from jobtitles.train.watch import RunWatch

PLAIN_SCORES = "plain_scores.npy"  # a fold's test scores as a plain pipeline shows them (group_loss: softmax only)


def cross_validate(project: ProjectArgs, training: TrainingArguments, command: str | None = None) -> Path:
    """Check every setting and the output folder, take the folder's lock, then run (or resume) the job.
    `command`: the command line, for run_info.json."""
    check_hub_settings(training)  # before hours of training, not after
    state = PartialState()
    run_dir = Path(training.output_dir)
    made_here = state.is_main_process and not run_dir.exists()
    try:
        state.on_main_process(check_output_dir)(run_dir)  # only the main process writes in the run folder
        check_max_length(project.model.model_name_or_path, project.model.max_length)
        precision = resolve_precision(project.model.precision)  # an impossible one stops here, before any data
        project, training, gpu_line = on_gpu(project, training)
        if gpu_line:
            logger.info(gpu_line)
        check_budget_settings(project, training)
        if "mlflow" in training.report_to and state.is_main_process:
            check_mlflow_store()
        with RunLock(run_dir) if state.is_main_process else contextlib.nullcontext():
            return _run(project, training, run_dir, state, precision, command)
    except BaseException:
        if made_here:
            remove_unstarted_run(run_dir)
        raise


def remove_unstarted_run(run_dir: Path) -> None:
    """A run that made its folder and stopped before a fold completed leaves no folder behind: nothing in it
    can be resumed, and a half-begun folder looks like a run. (Everything in a folder this run made is the run's
    own; a folder that existed before is never removed.)"""
    if run_dir.is_dir() and not any((run_dir / "folds").glob("fold_*/result.json")):
        shutil.rmtree(run_dir, ignore_errors=True)


def check_data(data: LabeledData, project: ProjectArgs) -> None:
    """Checks that need the labels or the row count: before any fold trains, not after."""
    if len(data) < project.run.n_splits:
        raise UserError(f"{project.data.train_file}: {len(data)} usable rows, fewer than "
                        f"n_splits={project.run.n_splits}; "
                        f"add rows or lower n_splits (at least 2)")
    project.configured_rule(data.labels)  # label_thresholds must name the file's labels
    if project.model.group_loss == "softmax" and not data.groups:
        logger.warning("group_loss: softmax, but the labels have no exclusive groups (label_groups); every label "
                       "trains with its own sigmoid")


def _run(project: ProjectArgs, training: TrainingArguments, run_dir: Path, state: PartialState,
         precision: Precision, command: str | None) -> Path:
    start = time.perf_counter()
    parts = PartTimes()
    set_up_process(project, state, precision)
    if choose_mode(project.run.progress) != "bar":
        datasets.disable_progress_bars()  # no tokenizing bar in a log file either
    with parts("load"):
        data = project.data.load(project.run.n_splits)
    check_data(data, project)
    state.on_main_process(begin_run_folder)(run_dir, project, training, data, precision, command)
    finished = broadcast(state.on_main_process(is_finished)(run_dir), state)
    if finished:
        return finished_run(run_dir, training, state)

    tokenizer = load_tokenizer(project.model.model_name_or_path, project.model.title_normalization)
    with parts("tokenize"):
        ds = training_dataset(data.titles, data.y, data.rows, tokenizer, project.model.max_length,
                              project.model.pad_to_max_length)
    with parts("calibrate"):
        plan = budget_plan(project, training, data, ds, tokenizer, run_dir, state, start)
    project, cv_data, cv_ds = planned_cv(plan, project, data, ds, training.seed)
    folds = make_folds(cv_data.y, project.run.n_splits, project.run.cv_shuffle, training.seed)
    state.on_main_process(write_folds)(run_dir, folds, cv_data)
    steps = model_steps_of(plan, project.run.n_splits) or capped_steps(project, training,
                                                                       [len(tr) for tr, _ in folds] + [len(data)])
    if plan is None and any(s is not None for s in steps):
        logger.info(f"step_growth {project.model.step_growth} from {project.model.step_growth_from:,} rows: "
                    + ", ".join(f"{name} {s} optimizer steps" for name, s in
                                zip([f"fold {k + 1}" for k in range(len(folds))] + ["final model"], steps)
                                if s is not None))
    watch = RunWatch.create(training, [len(tr) for tr, _ in folds], len(data), project.model.min_train_steps,
                            project.run.progress, run_dir, state.is_main_process, steps, Schedule(plan, project))
    watch.tracking.start(tracked_settings(project, training), run_tags(run_dir, project))
    try:
        outputs = [run_fold(k, train, test, cv_ds, tokenizer, cv_data, project, training, run_dir, state, watch)
                   for k, (train, test) in enumerate(folds)]
        record_fold_parts(parts, outputs)
        with parts("decisions"):
            result = state.on_main_process(summarize)(cv_data, folds, outputs, project, training,
                                                      time.perf_counter() - start, dataclasses.asdict(precision))
        result = broadcast(result, state)  # every process trains the final model with the same decision rule
        result = dataclasses.replace(result, plan=plan.to_json() if plan is not None else None)
        if project.run.final_model:
            from jobtitles.train.final import train_final

            result = train_final(project, training, data, ds, tokenizer, result, run_dir, state, watch, parts)
        result = state.on_main_process(finish_run)(run_dir, cv_data, result, project, start, parts)
        watch.tracking.finish(result, run_dir / "model" if project.run.final_model else None)
    except BaseException as err:
        watch.tracking.fail(interrupted=isinstance(err, KeyboardInterrupt))
        raise
    state.wait_for_everyone()
    return run_dir


def budget_plan(project: ProjectArgs, training: TrainingArguments, data: LabeledData, ds, tokenizer,
                run_dir: Path, state: PartialState, start: float) -> Plan | None:
    """None without a time budget; else the plan this run folder started with, or one made now."""
    if project.run.budget_seconds() is None:
        return None
    plan = broadcast(state.on_main_process(saved_plan)(run_dir), state)
    resumed = plan is not None
    if plan is None:
        from jobtitles.train.calibrate import measure

        throughput = measure(project, training, data, ds, tokenizer, run_dir / "calibration")
        throughput = dataclasses.replace(throughput, spent_seconds=time.perf_counter() - start)
        if state.is_main_process:
            shutil.rmtree(run_dir / "calibration", ignore_errors=True)
        plan = broadcast(state.on_main_process(make_plan)(project, training, len(data), throughput, run_dir), state)
    if state.is_main_process:
        announce(plan, resumed)
    return plan


def planned_cv(plan: Plan | None, project: ProjectArgs, data: LabeledData, ds, seed: int):
    """The settings, rows and tokenized rows the cross-validation runs on under `plan` (all rows without)."""
    if plan is None:
        return project, data, ds
    project = dataclasses.replace(project, run=dataclasses.replace(project.run, n_splits=plan.n_splits))
    rows = cv_sample(plan, data, seed)
    return (project, data, ds) if rows is None else (project, data.subset(rows), ds.select(rows))


def model_steps_of(plan: Plan | None, n_splits: int) -> list[int] | None:
    """Each model's optimizer steps under `plan` (fold models, then the final model)."""
    return None if plan is None else [plan.fold_steps] * n_splits + [plan.final_steps]


def record_fold_parts(parts: PartTimes, outputs: list[FoldOutput]) -> None:
    for k, out in enumerate(outputs):
        parts.add(f"fold_{k + 1}_head", out.head_seconds)
        parts.add(f"fold_{k + 1}_train", out.train_seconds)
        parts.add(f"fold_{k + 1}_score", out.score_seconds)


def tracked_settings(project: ProjectArgs, training: TrainingArguments) -> dict[str, object]:
    """The settings a tracker records for the run: the project's and the Trainer's, no secrets."""
    config = resolved_config(project, training)
    out = dict(config["project"])
    out.update({k: v for k, v in config["training"].items() if "token" not in k and k not in out})
    return out


def run_tags(run_dir: Path, project: ProjectArgs) -> dict[str, str]:
    return {"jobtitles.run_folder": str(run_dir.resolve()), "jobtitles.train_file": str(project.data.train_file),
            "jobtitles.git_commit": git_commit() or "unknown", "jobtitles.version": package_versions()["jobtitles"]}


def finish_run(run_dir: Path, data: LabeledData, result: RunResult, project: ProjectArgs, start: float,
               parts: PartTimes) -> RunResult:
    """Write the run's files once, marked complete (a rerun of the same command then changes nothing)."""
    from jobtitles.reporting.plots import write_plots

    with parts("label_issues"):
        issues, counts = run_files.label_issues(run_dir, data, result) if project.run.label_issues else (None, None)
    with parts("plots"):
        plots = write_plots(run_dir, result)
    # the baseline ran inside the decisions' part: shown as a part of its own
    parts.add("decisions", -(result.timing.baseline_seconds or 0.0))
    parts.add("baseline", result.timing.baseline_seconds)
    seconds = time.perf_counter() - start
    parts.add("other", seconds - sum(parts.seconds.values()))  # the report and run files, setup, waits
    result = dataclasses.replace(result, label_issues=counts, plots=plots, complete=True,
                                 timing=dataclasses.replace(result.timing, total_seconds=seconds,
                                                            parts=dict(parts.seconds)),
                                 previous_run=recorded_previous(run_dir))
    run_files.write_run_files(run_dir, data, result, issues)
    record_finish(run_dir, seconds)
    run_files.print_summary(result, run_dir)
    return result


def set_up_process(project: ProjectArgs, state: PartialState, precision: Precision) -> None:
    if not state.is_main_process:
        logger.setLevel(logging.WARNING)  # one copy of the progress messages
    if not torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
        torch.set_num_threads(cpu_threads(project.model.cpu_threads, local))
    logger.info(f"{state.num_processes} process{'es' if state.num_processes > 1 else ''} on {state.device}"
                + ("" if torch.cuda.is_available() else f", {torch.get_num_threads()} threads each")
                + f"; training in {precision.name} ({precision.reason})")


def begin_run_folder(run_dir: Path, project: ProjectArgs, training: TrainingArguments, data: LabeledData,
                     precision: Precision, command: str | None) -> None:
    """Record the run's inputs (or find an earlier run with the same inputs to resume) and the dropped rows."""
    config = resolved_config(project, training)
    info = {"fingerprint": fingerprint(config, Path(project.data.train_file)), "config": config,
            "versions": package_versions(), "git_commit": git_commit(), "git_dirty": git_dirty(),
            "train_file": str(project.data.train_file), "precision": dataclasses.asdict(precision),
            "command": command, "started_at": now_iso(), "machine": machine()}

    def compare(folder: Path, earlier: dict[str, object]) -> dict[str, object] | None:
        found = previous_run(folder, earlier, data.titles, data.label_sets)
        return found.to_json() if found is not None else None

    resumed = prepare_run_dir(run_dir, info, project.run.overwrite, compare)
    if resumed and is_finished(run_dir):
        return
    previous = recorded_previous(run_dir)  # a resumed run: the one it recorded when it started
    if previous is not None:
        logger.info(previous.console_line(len(data)))
    if resumed:
        logger.info(f"{run_dir} holds an earlier run with the same inputs: resuming it")
    run_files.write_dropped(run_dir, data)


def write_folds(run_dir: Path, folds, data: LabeledData) -> None:
    write_json(run_dir / "folds.json", [{"fold": k, "train_rows": [data.rows[i] for i in tr],
                                         "test_rows": [data.rows[i] for i in te]} for k, (tr, te) in enumerate(folds)])


def run_fold(k: int, train: np.ndarray, test: np.ndarray, ds, tokenizer, data: LabeledData,
             project: ProjectArgs, training: TrainingArguments, run_dir: Path, state: PartialState,
             watch: RunWatch) -> FoldOutput:
    """Fold k's output: read back when an earlier run of the same inputs finished it, else trained now."""
    fold_dir = run_dir / "folds" / f"fold_{k}"
    name = watch.progress.names[k]
    done = load_fold(fold_dir)
    if done is not None:
        watch.progress.skip(k)
        watch.schedule.resumed_after(k + 1)
        logger.info(f"{name}: complete in {fold_dir}, skipped (resume)")
        return done
    logger.info(f"{name}: training on {len(train)} titles, testing on {len(test)}{watch.progress.fold_line(k)}")
    out = train_fold(k, train, test, ds, tokenizer, data, project, training, run_dir, watch)
    state.on_main_process(save_fold)(fold_dir, out)
    state.wait_for_everyone()
    return out


def train_fold(k: int, train: np.ndarray, test: np.ndarray, ds, tokenizer, data: LabeledData,
               project: ProjectArgs, training: TrainingArguments, run_dir: Path, watch: RunWatch) -> FoldOutput:
    args = run_args(training, run_dir / "folds" / f"fold_{k}", project.model.precision, len(train),
                    project.model.min_train_steps, watch.steps(k))
    train_ds = ds.select(train)  # the fold's training split: all that a search or the model sees
    softmax = softmax_groups(project.model.group_loss, data.groups, data.labels)
    args = recipe_args(args, project.model, training.seed + k, train_ds, data.y[train], tokenizer, data.labels,
                       softmax, project.configured_rule(data.labels), run_dir / "folds" / f"fold_{k}",
                       watch.progress.names[k], PartialState().is_main_process)
    t0 = time.perf_counter()
    model = fresh_model(project.model.model_name_or_path, data.labels, training.seed + k, project.model.head_init,
                        project.model.probe_c, train_ds, data.y[train], tokenizer)
    head_seconds = time.perf_counter() - t0
    with watch.model(k) as callbacks:
        fold = FoldRun(model, args, train_ds, tokenizer, data.y[train], project.model.pos_weight, softmax, callbacks,
                       project.model.repeat_factor_threshold)
        fold.train()
    if project.run.fold_average and project.run.final_model:  # the Trainer writes on the main process only
        fold.trainer.save_model(str(fold_model_dirs(run_dir, project.run.n_splits)[k]))
    t0 = time.perf_counter()
    test_scores, plain_scores = fold.score_pair(ds.select(test))
    train_metrics = None
    if project.run.report_train_metrics:
        train_pred = project.configured_rule(data.labels).decide(fold.scores(train_ds))
        train_metrics = multilabel_metrics(data.y[train], train_pred)
    return FoldOutput(test_scores, train_metrics, fold.train_seconds, fold.loss_history(), head_seconds,
                      time.perf_counter() - t0, fold.steps, plain_scores)


def save_fold(fold_dir: Path, out: FoldOutput) -> None:
    save_npy(fold_dir / "test_scores.npy", out.test_scores)
    if out.plain_scores is not None:
        save_npy(fold_dir / PLAIN_SCORES, out.plain_scores)
    # result.json last: its presence marks the fold as complete, so a rerun of the same command skips it
    write_json(fold_dir / "result.json", {"train_metrics": out.train_metrics, "train_seconds": out.train_seconds,
                                           "loss_history": out.loss_history, "head_seconds": out.head_seconds,
                                           "score_seconds": out.score_seconds, "steps": out.steps})


def load_fold(fold_dir: Path) -> FoldOutput | None:
    if not (fold_dir / "result.json").is_file():
        return None
    res = read_json(fold_dir / "result.json")
    plain = np.load(fold_dir / PLAIN_SCORES) if (fold_dir / PLAIN_SCORES).is_file() else None
    return FoldOutput(np.load(fold_dir / "test_scores.npy"), res["train_metrics"], res["train_seconds"],
                      res["loss_history"], res.get("head_seconds"), res.get("score_seconds"), res.get("steps"), plain)


def broadcast(value, state: PartialState):
    """The main process's value, on every process (only the main one reads and summarizes the run folder)."""
    if state.num_processes == 1:
        return value
    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def finished_run(run_dir: Path, training: TrainingArguments, state: PartialState) -> Path:
    """A rerun of a finished run's command: say so, show its figures, write nothing (push only if asked)."""
    state.on_main_process(show_finished_run)(run_dir, training)
    return run_dir


def show_finished_run(run_dir: Path, training: TrainingArguments) -> None:
    logger.info(f"{run_dir} holds a finished run with the same inputs; nothing to do (its files are "
                "unchanged; --overwrite starts over)")
    run_files.print_summary(RunResult.from_json(read_json(run_dir / "cv_results.json")), run_dir)
    if training.push_to_hub and (run_dir / "model").is_dir():
        push(run_dir / "model", training)
