"""The final model: trained on all rows with the CV settings, checked on its own rows, saved with the shipped
decision rule and its card, pushed if asked."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
from accelerate import PartialState
from transformers import TrainingArguments

from jobtitles.core.baseline import fit_baseline
from jobtitles.core.title_normalization import CONFIG_KEY as NORMALIZATION_KEY
from jobtitles.train.project_args import ProjectArgs
from jobtitles.core.data import LabeledData
from jobtitles.train.hp_search import recipe_args
from jobtitles.train.hub import push
from jobtitles.train.part_times import PartTimes
from jobtitles.core.io_utils import disk_errors, read_json, replace_dir, write_json
from jobtitles.core.label_groups import softmax_groups
from jobtitles.core.log import logger, warn
from jobtitles.core.metrics import label_agreement, multilabel_metrics, per_label_metrics
from jobtitles.core.model_folder import is_complete
from jobtitles.train.row_sample import large_set_rows
from jobtitles.core.training_schema import TrainingSchema
from jobtitles.train.model_save import decision_config, write_card, write_parity_rows
from jobtitles.selection.run_result import FitCheck, PipelineGap, RunResult
from jobtitles.core.baseline_store import save_baseline
from jobtitles.train.training import FoldRun, fresh_model, run_args
from jobtitles.train.watch import RunWatch
from jobtitles.train.weight_average import FINAL_OWN, average_into, fold_model_dirs

FINAL_RECORD = "final_result.json"  # the final model's training record and fit check


def train_final(project: ProjectArgs, training: TrainingArguments, data: LabeledData, ds, tokenizer,
                result: RunResult, run_dir: Path, state: PartialState, watch: RunWatch,
                parts: PartTimes | None = None) -> RunResult:
    """Train and save run_dir/model (every process takes part in training; the main one writes). Returns
    `result` with the final model's training record and fit check (read back from final_result.json when a
    resumed run finds the model already saved, so its cv_results.json is the uninterrupted run's)."""
    model_dir = run_dir / "model"
    index = project.run.n_splits  # the final model trains after the folds
    if is_complete(model_dir):
        watch.progress.skip(index)
        watch.schedule.resumed_after(index + 1)
        logger.info(f"final model: complete in {model_dir}, skipped (resume; its fit check is in its card)")
        result = with_final_record(result, run_dir)
    else:
        logger.info(f"final model: training on all {len(data)} titles{watch.progress.fold_line(index)}")
        parts = parts if parts is not None else PartTimes()
        args = run_args(training, run_dir / "final_trainer", project.model.precision, len(data),
                        project.model.min_train_steps, watch.steps(index))
        trained_softmax = softmax_groups(project.model.group_loss, data.groups, data.labels)
        args = recipe_args(args, project.model, training.seed + project.run.n_splits, ds, data.y, tokenizer,
                           data.labels, trained_softmax, project.configured_rule(data.labels),
                           run_dir / "folds" / "final", "final model", state.is_main_process)
        with parts("final_head"):
            model = fresh_model(project.model.model_name_or_path, data.labels, training.seed + project.run.n_splits,
                                project.model.head_init, project.model.probe_c, ds, data.y, tokenizer)
        with watch.model(index) as callbacks:
            final = FoldRun(model, args, ds, tokenizer, data.y, project.model.pos_weight, trained_softmax,
                            callbacks, project.model.repeat_factor_threshold)
            final.train()
        parts.add("final_train", final.train_seconds)
        if project.run.fold_average:
            with parts("final_average"):
                average_folds(final, run_dir, project.run.n_splits, state)
        with parts("final_baseline"):
            baseline = fit_baseline(data.titles, data.y, training.seed) if result.shipped_sources() else None
        with parts("final_fit_check"):
            checked, checked_ds = check_rows(data, ds, training.seed)
            plain, shipped = training_scores(final, checked_ds, checked, result, baseline)
            check = fit_check(shipped, checked, result)
        result = dataclasses.replace(
            result, final_fit_check=check, final_loss_history=final.loss_history(), final_steps=final.steps,
            pipeline_gap=training_gap(result, plain, shipped),
            averaged_models=project.run.n_splits + 1 if project.run.fold_average else 0,
            timing=dataclasses.replace(result.timing, final_train_seconds=final.train_seconds))
        configure_saved(model, tokenizer, result, project, data)
        tmp = run_dir / ".model.tmp"
        save_started = time.perf_counter()
        try:
            with disk_errors(tmp):  # a full disk is one line naming the folder, whichever library wrote
                final.trainer.save_model(str(tmp))  # main process only; safetensors + config + tokenizer
                if state.is_main_process:
                    if baseline is not None:
                        save_baseline(baseline, tmp)
                    write_card(tmp, result, project, training, data, run_dir)
                    write_parity_rows(tmp, data, training.seed)
                    write_json(run_dir / FINAL_RECORD, final_record(result))  # before model/: complete ones have it
        except BaseException:  # no half-saved folder stays; an earlier model/ is untouched
            for partial in (tmp, run_dir / "final_trainer"):
                shutil.rmtree(partial, ignore_errors=True)
            raise
        if state.is_main_process:
            replace_dir(tmp, model_dir)
            shutil.rmtree(run_dir / "final_trainer", ignore_errors=True)
        state.wait_for_everyone()
        parts.add("final_save", time.perf_counter() - save_started)
    if state.is_main_process and training.push_to_hub:
        push(model_dir, training)
    return result


def average_folds(final: FoldRun, run_dir: Path, n_splits: int, state: PartialState) -> None:
    """The final model's own weights kept (folds/final/model), then replaced by the average with the folds'."""
    final.trainer.save_model(str(run_dir / FINAL_OWN))
    state.wait_for_everyone()
    average_into(final.trainer.model, fold_model_dirs(run_dir, n_splits))
    logger.info(f"final model: the shipped weights are the uniform average of {n_splits} fold models and the final "
                f"model (fold_average; the final model's own weights are in {run_dir / FINAL_OWN})")


def configure_saved(model, tokenizer, result: RunResult, project: ProjectArgs, data: LabeledData) -> None:
    """What the saved folder carries beside the weights: the decision rule, the training file's layout and the
    training max_length."""
    model.config.update(decision_config(result))
    # the training file's layout: rows suggested or labelled later are written to append to that file
    d = project.data
    model.config.update(TrainingSchema.of_training(d.text_column, d.label_column_prefix, d.delimiter,
                                                   data.label_columns, d.empty_label, data.groups).to_config())
    # the tokenizer's own limit is what every backend and transformers' pipeline(truncation=True) cut to:
    # the length the model was trained with, not the encoder's 512
    tokenizer.model_max_length = project.model.max_length
    model.config.update({NORMALIZATION_KEY: project.model.title_normalization})  # the rules live in tokenizer.json


def final_record(result: RunResult) -> dict:
    return {"final_fit_check": dataclasses.asdict(result.final_fit_check),
            "pipeline_gap": dataclasses.asdict(result.pipeline_gap) if result.pipeline_gap else None,
            "final_loss_history": result.final_loss_history,
            "final_train_seconds": result.timing.final_train_seconds, "final_steps": result.final_steps,
            "averaged_models": result.averaged_models}


def with_final_record(result: RunResult, run_dir: Path) -> RunResult:
    """`result` with the saved final model's record (as it is without one: folders of older versions)."""
    path = run_dir / FINAL_RECORD
    if not path.is_file():
        return result
    record = read_json(path)
    gap = result.pipeline_gap  # records of older versions: the gap as re-decided (out-of-fold figures only)
    if "pipeline_gap" in record:  # None: the saved model scores every label with the transformer
        gap = PipelineGap.from_json(record["pipeline_gap"]) if record["pipeline_gap"] else None
    return dataclasses.replace(result, final_fit_check=FitCheck(**record["final_fit_check"]), pipeline_gap=gap,
                               final_loss_history=record["final_loss_history"], final_steps=record.get("final_steps"),
                               averaged_models=record.get("averaged_models", 0),
                               timing=dataclasses.replace(result.timing,
                                                          final_train_seconds=record["final_train_seconds"]))


def check_rows(data: LabeledData, ds, seed: int):
    """The training rows the fit check scores: all of them, or of a large set a stratified sample (with every
    row of its rare labels): scoring 100,000 rows again costs minutes and says little more."""
    rows = large_set_rows(data.y, seed)
    if rows is None:
        return data, ds
    logger.info(f"final model: fit check on a stratified sample of {len(rows)} of its {len(data)} training rows")
    return data.subset(rows.tolist()), ds.select(rows)


def training_scores(final: FoldRun, ds, data: LabeledData, result: RunResult, baseline) -> tuple[np.ndarray, np.ndarray]:
    """The final model's scores on its training rows: as a plain pipeline shows them (the transformer's alone,
    a sigmoid per logit), and as shipped (with the baseline's for the labels scored by it)."""
    transformer, plain = final.score_pair(ds)
    plain = transformer if plain is None else plain
    if baseline is None:
        return plain, transformer
    return plain, result.shipped_scoring().combine(
        transformer, baseline.predict_proba(np.asarray(data.titles, dtype=object)))


def training_gap(result: RunResult, plain: np.ndarray, shipped: np.ndarray) -> PipelineGap | None:
    """The run's pipeline gap with the final model's own figures: on its training titles, how often the shipped
    rule gives the same label set from a plain pipeline's scores as from the shipped scores."""
    if result.pipeline_gap is None:
        return None
    rule = result.shipped_rule()
    same, jaccard = label_agreement(rule.decide(plain), rule.decide(shipped), result.labels)
    return dataclasses.replace(result.pipeline_gap, train_agreement=same, train_label_jaccard=jaccard)


def fit_check(scores: np.ndarray, data: LabeledData, result: RunResult) -> FitCheck:
    """Judge the final model's shipped scores on its own training rows with the saved decision rule.

    A model should fit the rows it was trained on at least as well as the fold models did unseen rows; when it
    does not, its training went wrong (a diverged or stuck seed), which the CV figures cannot show."""
    pred = result.shipped_rule().decide(scores)
    metrics = multilabel_metrics(data.y, pred)
    recall = {lab: m["recall"] for lab, m in per_label_metrics(data.y, pred, data.labels).items()}
    missed = [f"{lab} ({recall[lab]:.2f} of {int(data.y[:, j].sum())} rows)" for j, lab in enumerate(data.labels)
              if data.y[:, j].sum() > 0 and recall[lab] < 0.5]
    if missed:
        warn(f"final model: on its own training rows it misses most rows of {', '.join(missed)}; these labels "
             "are not learned (see the per-label table)")
    cv = result.summary["model"]["micro_f1"]
    floor = cv["mean"] - max(2 * cv["std"], 0.01)
    ok = metrics["micro_f1"] >= floor
    if not ok:
        warn(f"final model: micro-F1 {metrics['micro_f1']:.4f} on its own training rows, expected at least "
             f"{floor:.4f} (the fold models' CV micro-F1 {cv['mean']:.4f} minus noise); its training went wrong, "
             "rerun with another seed before using it")
    return FitCheck(train_rows=metrics, expected_min_micro_f1=floor, ok=ok, label_recall=recall, n_rows=len(data))
