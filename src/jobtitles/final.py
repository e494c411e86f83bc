"""The final model: trained on all rows with the CV settings, saved with its thresholds and card, pushed if asked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from accelerate import PartialState
from transformers import TrainingArguments

from jobtitles.config import ProjectArgs
from jobtitles.data import LabeledData
from jobtitles.errors import UserError, logger, warn
from jobtitles.inference import AT_LEAST_ONE_KEY, EXCLUSIVE_KEY, GROUPS_KEY, SOURCES_KEY, THRESHOLDS_KEY
from jobtitles.label_groups import group_index
from jobtitles.decisions import decide, exclusive_index, threshold_vector
from jobtitles.io_utils import read_json, replace_dir, write_json, write_text
from jobtitles.metrics import multilabel_metrics, per_label_metrics
from jobtitles.baseline import fit_baseline
from jobtitles.score_sources import combine, save_baseline, source_list
from jobtitles.report import render_report
from jobtitles.training import FoldRun, fresh_model, run_args



def is_complete(model_dir: Path) -> bool:
    cfg = model_dir / "config.json"
    return cfg.is_file() and THRESHOLDS_KEY in read_json(cfg)


def train_final(project: ProjectArgs, training: TrainingArguments, data: LabeledData, ds, tokenizer,
                results: dict, run_dir: Path, state: PartialState) -> Path:
    model_dir = run_dir / "model"
    if is_complete(model_dir):
        logger.info(f"final model: complete in {model_dir}, skipped (resume)")
    else:
        logger.info(f"final model: training on all {len(data)} titles")
        args = run_args(training, run_dir / "final_trainer", project.precision, len(data), project.min_train_steps)
        model = fresh_model(project.model_name_or_path, data.labels, training.seed + project.n_splits,
                            project.head_init, project.probe_c, ds, data.y, tokenizer)
        final = FoldRun(model, args, ds, tokenizer, data.y, project.pos_weight)
        final.train()
        sources = shipped_sources(results)
        baseline = fit_baseline(data.titles, data.y, training.seed) if sources else None
        check = fit_check(final, ds, data, results, project, baseline)
        model.config.update({THRESHOLDS_KEY: results["thresholds"], AT_LEAST_ONE_KEY: project.at_least_one,
                             EXCLUSIVE_KEY: results["decision"]["exclusive_label"], SOURCES_KEY: sources,
                             GROUPS_KEY: results["label_groups"] if results.get("label_groups_used") else None})
        tmp = run_dir / ".model.tmp"
        final.trainer.save_model(str(tmp))  # main process only; safetensors + config + tokenizer
        if state.is_main_process:
            if baseline is not None:
                save_baseline(baseline, tmp)
            results["timing"]["final_train_seconds"] = final.train_seconds
            results["final_loss_history"] = final.loss_history()
            results["final_fit_check"] = check
            write_json(run_dir / "cv_results.json", results)
            write_text(run_dir / "report.md", render_report(results))
            write_card(tmp, results, project, training)
            replace_dir(tmp, model_dir)
            shutil.rmtree(run_dir / "final_trainer", ignore_errors=True)
        state.wait_for_everyone()
    if state.is_main_process and training.push_to_hub:
        push(model_dir, training)
    return model_dir


def shipped_sources(results: dict) -> dict[str, str]:
    """Labels whose score the model takes from the baseline or the blend (empty: transformer only)."""
    choice = results.get("score_sources")
    if not choice or not choice["adopted"]:
        return {}
    return {lab: src for lab, src in choice["sources"].items() if src != "transformer"}


def fit_check(final: FoldRun, ds, data: LabeledData, results: dict, project: ProjectArgs, baseline=None) -> dict:
    """Score the final model on its own training rows with the saved decision rule.

    A model should fit the rows it was trained on at least as well as the fold models did unseen rows; when it
    does not, its training went wrong (a diverged or stuck seed), which the CV figures cannot show."""
    scores = final.scores(ds)
    if baseline is not None:
        sources = source_list(data.labels, shipped_sources(results))
        scores = combine(scores, baseline.predict_proba(np.asarray(data.titles, dtype=object)), sources)
    groups = group_index(data.groups, data.labels) if results.get("label_groups_used") else None
    pred = decide(scores, threshold_vector(data.labels, 0.5, results["thresholds"]), project.at_least_one,
                  exclusive_index(data.labels, results.get("decision", {}).get("exclusive_label")), groups)
    metrics = multilabel_metrics(data.y, pred)
    recall = {lab: m["recall"] for lab, m in per_label_metrics(data.y, pred, data.labels).items()}
    missed = [f"{lab} ({recall[lab]:.2f} of {int(data.y[:, j].sum())} rows)" for j, lab in enumerate(data.labels)
              if data.y[:, j].sum() > 0 and recall[lab] < 0.5]
    if missed:
        warn(f"final model: on its own training rows it misses most rows of {', '.join(missed)}; these labels "
             "are not learned (see the per-label table)")
    cv = results["summary"]["model"]["micro_f1"]
    floor = cv["mean"] - max(2 * cv["std"], 0.01)
    ok = metrics["micro_f1"] >= floor
    if not ok:
        warn(f"final model: micro-F1 {metrics['micro_f1']:.4f} on its own training rows, expected at least "
             f"{floor:.4f} (the fold models' CV micro-F1 {cv['mean']:.4f} minus noise); its training went wrong, "
             "rerun with another seed before using it")
    return {"train_rows": metrics, "expected_min_micro_f1": floor, "ok": ok, "label_recall": recall}


def write_card(model_dir: Path, results: dict, project: ProjectArgs, training: TrainingArguments) -> None:
    from jobtitles.model_card import make_card

    try:  # best effort: a card problem must never cost a trained model
        make_card(results, project, training).save(model_dir / "README.md")
    except Exception as err:  # noqa: BLE001
        warn(f"model card not written ({type(err).__name__}: {err}); the model itself is saved")


def push(model_dir: Path, training: TrainingArguments) -> None:
    from huggingface_hub import HfApi

    if not training.hub_model_id:
        raise UserError("push_to_hub is true but hub_model_id is not set; set hub_model_id: <user>/<repo>")
    api = HfApi(token=training.hub_token)
    api.create_repo(training.hub_model_id, private=bool(training.hub_private_repo), exist_ok=True)
    api.upload_folder(repo_id=training.hub_model_id, folder_path=str(model_dir),
                      commit_message="Upload multi-label job-title classifier")
    logger.info(f"pushed {model_dir} to https://huggingface.co/{training.hub_model_id}")
