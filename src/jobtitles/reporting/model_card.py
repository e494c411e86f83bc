"""The model card (README.md of the model folder) from the CV results, with huggingface_hub.ModelCard."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import TrainingArguments

from jobtitles.train.project_args import ProjectArgs
from jobtitles.core.embedded import base_model_id
from jobtitles.reporting.report import (final_text, fold_table, label_table, metric_table, missing_text, rare_labels_text,
                              sources_text, threshold_text)
from jobtitles.train.run_folder import VOLATILE, package_versions
from jobtitles.selection.run_result import RunResult

TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
CARD_METRICS = {"micro_f1": ("f1", "CV micro-F1"), "macro_f1": ("f1", "CV macro-F1"),
                "samples_f1": ("f1", "CV samples-F1"), "subset_accuracy": ("accuracy", "CV subset accuracy"),
                "hamming_loss": ("hamming_loss", "CV Hamming loss")}


# never shown: where files went on the training machine, secrets, and settings that do not change the model
HIDDEN = VOLATILE | {"train_file", "hub_token", "hub_strategy", "logging_dir", "output_dir", "save_strategy",
                     "disable_tqdm", "max_train_rows", "overwrite", "accelerator_config", "model_name_or_path",
                     "per_device_eval_batch_size"}


def _field_defaults(cls) -> dict[str, Any]:
    """A dataclass's declared defaults. Not `TrainingArguments()`: constructing one sets up (and in a
    distributed run resets) accelerate's process state."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = getattr(f.default, "value", f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _differs(value: Any, default: Any) -> bool:
    # __post_init__ normalises some unset values (None -> False, "" -> [], "none" -> []): still the default
    return value != default and not (not value and (not default or default == "none"))


def non_default_settings(project: ProjectArgs, training: TrainingArguments) -> dict[str, Any]:
    """The run's settings that differ from the defaults (TrainingArguments' and the project's), as
    sentence-transformers' cards list theirs: what a reader needs to reproduce the model."""
    defaults = _field_defaults(TrainingArguments)
    out = {k: v for k, v in training.to_dict().items()
           if k not in HIDDEN and not k.startswith("_") and "token" not in k and _differs(v, defaults.get(k))}
    project_defaults = ProjectArgs().as_dict()
    out.update({k: v for k, v in project.as_dict().items()
                if k not in HIDDEN and _differs(v, project_defaults.get(k))})
    return dict(sorted(out.items()))


def eval_results(r: RunResult) -> list[EvalResult]:
    dataset = Path(r.train_file).name
    return [EvalResult(task_type="text-classification", task_name="Multi-label job-title classification",
                       dataset_type="csv", dataset_name=dataset, metric_type=mtype,
                       metric_name=f"{name} ({r.n_splits}-fold)",
                       metric_value=round(r.summary[r.shipped_variant][key]["mean"], 4))
            for key, (mtype, name) in CARD_METRICS.items()]


def make_card(r: RunResult, project: ProjectArgs, training: TrainingArguments) -> ModelCard:
    base = base_model_id(project.model.model_name_or_path)
    data = ModelCardData(
        library_name="transformers", pipeline_tag="text-classification", license="mit",
        base_model=base if "/" in base and not Path(base).exists() else None,
        tags=["text-classification", "multi-label-classification", "job-titles", "jobtitles"],
        model_name=training.hub_model_id or "job-title-classifier",
        eval_results=eval_results(r),
    )
    used = {"precision": r.precision.get("name", project.model.precision), "group_loss": r.group_loss}
    return ModelCard.from_template(
        data, template_path=str(TEMPLATE),
        model_id=training.hub_model_id or "outputs/<run>/model",
        title=training.hub_model_id or "Multi-label job-title classifier",
        base_model=base,
        labels=r.labels,
        label_support=r.label_support,
        n_rows=r.n_rows, n_splits=r.n_splits, train_file=Path(r.train_file).name,
        metric_table=metric_table(r), label_table=label_table(r), fold_table=fold_table(r),
        missing_text=missing_text(r), rare_text=rare_labels_text(r), sources_text=sources_text(r),
        threshold_text=threshold_text(r), final_text=final_text(r),
        baseline_name=r.baseline_name, settings=non_default_settings(project, training), used=used,
        max_length=project.model.max_length, versions=package_versions(),
    )
