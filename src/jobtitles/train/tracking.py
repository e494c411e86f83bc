"""Experiment tracking (`report_to: mlflow` and/or `tensorboard`), logged the way a data team reads a run: one
parent MLflow run with the settings, the cross-validated figures (mean and std, per label, per fold), the shipped
decision rule and the run's files as artifacts; a child run per fold model and for the final model with its loss
curve (the Trainer's own MLflowCallback / TensorBoardCallback); TensorBoard event files under
<run folder>/tensorboard/ (one folder per model, and `cv` for the run's figures).

MLflow writes where it is pointed (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME), as everywhere else; the log
says where."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from transformers import TrainerCallback

from jobtitles.core.errors import UserError
from jobtitles.core.log import logger
from jobtitles.core.metrics import METRICS

# report_to name -> the module it needs
SUPPORTED = {"mlflow": "mlflow", "tensorboard": "tensorboard"}
INSTALL = 'pip install "jobtitles[tracking]"'
TENSORBOARD_DIR = "tensorboard"
ARTIFACT_FILES = ("report.md", "cv_results.json", "run_info.json", "oof_predictions.csv", "label_issues.csv")


def check_report_to(report_to: list[str]) -> None:
    """Before any data is read: every integration is one this pipeline logs to, and installed."""
    for name in report_to:
        if name not in SUPPORTED:
            raise UserError(f"report_to: {name!r} is not supported here; expected mlflow, tensorboard or none "
                            "(several may be given)")
        if importlib.util.find_spec(SUPPORTED[name]) is None:
            raise UserError(f"report_to: {name} needs the {SUPPORTED[name]} package, which is not installed; "
                            f"install it with: {INSTALL}")


def check_mlflow_store() -> None:
    """The tracking store MLflow is pointed at opens (before any data is read): a store it refuses, such as the
    file store that MLflow 3 keeps only behind MLFLOW_ALLOW_FILE_STORE, is one line, not a traceback in fold 0."""
    import mlflow
    from mlflow.exceptions import MlflowException

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines (database set-up) say nothing to users
    uri = mlflow.get_tracking_uri()
    try:
        mlflow.tracking.MlflowClient(uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as err:
        first = str(err).split(". ")[0]
        raise UserError(f"report_to mlflow: the tracking store {uri} does not open ({first}); point "
                        "MLFLOW_TRACKING_URI at a store MLflow accepts, e.g. sqlite:///mlflow.db or a server") from err


def metric_name(name: str) -> str:
    """A label inside a metric name, in the characters MLflow allows (as transformers' MLflowCallback does)."""
    return re.sub(r"[^0-9A-Za-z_\-. :/]", "_", name)


def run_figures(result) -> dict[str, float]:
    """The shipped rule's cross-validated figures (mean and std), the baseline's, and each label's F1."""
    out: dict[str, float] = {}
    for variant, prefix in ((result.shipped_variant, "cv"), ("baseline", "baseline")):
        for key, values in result.summary.get(variant, {}).items():
            if key in METRICS:
                out[f"{prefix}_{key}_mean"] = float(values["mean"])
                out[f"{prefix}_{key}_std"] = float(values["std"])
    for label, values in result.per_label.get(result.shipped_variant, {}).items():
        out[metric_name(f"label/{label}/f1")] = float(values["f1"])
    return out


def fold_figures(result) -> list[dict[str, float]]:
    """Each fold's test figures under the shipped rule, in fold order."""
    return [{k: float(v) for k, v in fold.metrics[result.shipped_variant].items() if k in METRICS}
            for fold in result.folds]


class Tracking:
    """The run's trackers (none when `report_to` is empty or on a process other than the main one)."""

    def __init__(self, report_to: list[str], run_dir: Path) -> None:
        self.targets = tuple(report_to)
        self.run_dir = run_dir
        self.mlflow = None
        self.children: dict[int, str] = {}  # model index -> MLflow child run id

    def start(self, settings: dict[str, Any], tags: dict[str, str]) -> None:
        if "mlflow" not in self.targets:
            return
        import mlflow
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        self.mlflow = mlflow
        if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
            mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])  # created when missing
        run = mlflow.start_run(run_name=self.run_dir.name or "jobtitles", tags=tags)
        logger.info(f"MLflow: run {run.info.run_id} at {mlflow.get_tracking_uri()}")
        params = [(k, str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in settings.items()]
        for i in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
            mlflow.log_params(dict(params[i:i + MAX_PARAMS_TAGS_PER_BATCH]))

    @contextlib.contextmanager
    def model(self, index: int, name: str, folder: str) -> Iterator[list[TrainerCallback]]:
        """The callbacks that log one model's training: an MLflow child run, a TensorBoard folder."""
        callbacks: list[TrainerCallback] = []
        if "tensorboard" in self.targets:
            from torch.utils.tensorboard import SummaryWriter
            from transformers.integrations import TensorBoardCallback

            callbacks.append(TensorBoardCallback(SummaryWriter(str(self.run_dir / TENSORBOARD_DIR / folder))))
        if self.mlflow is None:
            yield callbacks
            return
        from transformers.integrations import MLflowCallback

        # an active run that the callback did not start: it logs into it and leaves ending it to us
        with self.mlflow.start_run(run_name=name, nested=True) as child:
            self.children[index] = child.info.run_id
            yield callbacks + [MLflowCallback()]

    def finish(self, result, model_dir: Path | None) -> None:
        """The run's figures, rule and files; then the parent run ends."""
        if "tensorboard" in self.targets:
            self._tensorboard_figures(result)
        if self.mlflow is None:
            return
        mlflow = self.mlflow
        mlflow.log_metrics(run_figures(result))
        for k, figures in enumerate(fold_figures(result)):
            mlflow.log_metrics({f"fold_{key}": v for key, v in figures.items()}, step=k + 1)
            if k in self.children:
                mlflow.tracking.MlflowClient().log_batch(self.children[k], metrics=[
                    mlflow.entities.Metric(f"test_{key}", v, int(time.time() * 1000), k + 1)
                    for key, v in figures.items()])
        mlflow.log_dict(result.shipped_rule().to_config(), "decision_rule.json")
        for name in ARTIFACT_FILES:
            if (self.run_dir / name).is_file():
                mlflow.log_artifact(str(self.run_dir / name))
        if (self.run_dir / "plots").is_dir():
            mlflow.log_artifacts(str(self.run_dir / "plots"), "plots")
        if model_dir is not None and model_dir.is_dir():
            mlflow.log_artifacts(str(model_dir), "model")
        mlflow.end_run()
        self.mlflow = None

    def fail(self, interrupted: bool) -> None:
        if self.mlflow is not None:
            while self.mlflow.active_run() is not None:  # children first, then the parent
                self.mlflow.end_run(status="KILLED" if interrupted else "FAILED")
            self.mlflow = None

    def _tensorboard_figures(self, result) -> None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(self.run_dir / TENSORBOARD_DIR / "cv")) as writer:
            for key, value in run_figures(result).items():
                writer.add_scalar(key, value, 0)
            for k, figures in enumerate(fold_figures(result)):
                for key, value in figures.items():
                    writer.add_scalar(f"fold/{key}", value, k + 1)
            writer.add_text("decision_rule", json.dumps(result.shipped_rule().to_config(), indent=1))
