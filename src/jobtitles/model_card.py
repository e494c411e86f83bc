"""The model card (README.md of the model folder) from the CV results, with huggingface_hub.ModelCard."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import TrainingArguments

from jobtitles.config import ProjectArgs
from jobtitles.embedded import base_model_id
from jobtitles.report import rare_labels_text, shipped_variant, sources_text, final_text, fold_table, label_table, metric_table, missing_text, threshold_text
from jobtitles.runstate import package_versions

TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
CARD_METRICS = {"micro_f1": ("f1", "CV micro-F1"), "macro_f1": ("f1", "CV macro-F1"),
                "samples_f1": ("f1", "CV samples-F1"), "subset_accuracy": ("accuracy", "CV subset accuracy"),
                "hamming_loss": ("hamming_loss", "CV Hamming loss")}
SHOWN_TRAINING_ARGS = ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "warmup_steps",
                       "weight_decay", "lr_scheduler_type", "optim", "seed", "train_sampling_strategy")


def eval_results(results: dict) -> list[EvalResult]:
    variant = shipped_variant(results)
    dataset = Path(results["train_file"]).name
    return [EvalResult(task_type="text-classification", task_name="Multi-label job-title classification",
                       dataset_type="csv", dataset_name=dataset, metric_type=mtype,
                       metric_name=f"{name} ({results['n_splits']}-fold)",
                       metric_value=round(results["summary"][variant][key]["mean"], 4))
            for key, (mtype, name) in CARD_METRICS.items()]


def make_card(results: dict, project: ProjectArgs, training: TrainingArguments) -> ModelCard:
    base = base_model_id(project.model_name_or_path)
    data = ModelCardData(
        library_name="transformers", pipeline_tag="text-classification", license="mit",
        base_model=base if "/" in base and not Path(base).exists() else None,
        tags=["text-classification", "multi-label-classification", "job-titles", "jobtitles"],
        model_name=training.hub_model_id or "job-title-classifier",
        eval_results=eval_results(results),
    )
    settings = {k: getattr(getattr(training, k), "value", getattr(training, k)) for k in SHOWN_TRAINING_ARGS}
    settings.update({"max_length": project.max_length, "head_init": project.head_init, "pos_weight": project.pos_weight,
                     "at_least_one": project.at_least_one, "n_splits": project.n_splits,
                     "precision": (results.get("precision") or {}).get("name", project.precision)})
    return ModelCard.from_template(
        data, template_path=str(TEMPLATE),
        model_id=training.hub_model_id or "outputs/<run>/model",
        title=training.hub_model_id or "Multi-label job-title classifier",
        base_model=base,
        labels=results["labels"],
        label_support=results["label_support"],
        n_rows=results["n_rows"], n_splits=results["n_splits"], train_file=Path(results["train_file"]).name,
        metric_table=metric_table(results), label_table=label_table(results), fold_table=fold_table(results),
        missing_text=missing_text(results), rare_text=rare_labels_text(results), sources_text=sources_text(results), threshold_text=threshold_text(results), final_text=final_text(results),
        baseline_name=results.get("baseline_name"), settings=settings, versions=package_versions(),
    )
