"""The training recipe searched per model (`hp_search_trials`): the Trainer's own hyperparameter_search with Optuna,
on that model's training rows only. A fold model searches inside its fold's training split, the final model inside
all rows, so no test-fold row ever reaches a search and the out-of-fold figures stay honest (nested
cross-validation). The rows are split once more, seeded and iteratively stratified, into the trials' training part
and their validation part; each trial trains a fresh model (the run's head recipe and loss) on the first and is
scored on the second with the configured rule, by the mean of micro-F1 and subset accuracy (the chooser's
objective). The best trial's values replace the model's TrainingArguments; its steps stay the run's own."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np
from transformers import TrainingArguments

from jobtitles.core.decision_rule import DecisionRule
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import write_json
from jobtitles.core.log import logger
from jobtitles.core.metrics import multilabel_metrics

SEARCH_FILE = "hp_search.json"  # in the model's folder (folds/fold_k/, or the run folder for the final model)
VALIDATION_SHARE = 0.2


def hp_space(trial) -> dict[str, Any]:
    """What a trial varies: the recipe levers of small real sets (the run's optimizer steps stay fixed)."""
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-4, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
            "warmup_steps": trial.suggest_float("warmup_steps", 0.0, 0.2),  # a float below 1: a share of the steps
            "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32, 64])}


@dataclasses.dataclass(frozen=True)
class SearchResult:
    hyperparameters: dict[str, Any]
    objective: float
    trials: int
    search_rows: int
    validation_rows: int

    def line(self, name: str) -> str:
        values = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in self.hyperparameters.items())
        return (f"{name}: searched {self.trials} trials on {self.search_rows} of its training titles, validated on "
                f"{self.validation_rows}: {values} (objective {self.objective:.4f})")


def search_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the trials' training rows, their validation rows) of one model's training rows."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=VALIDATION_SHARE, random_state=seed)
    inner, val = next(splitter.split(np.zeros(len(y)), y))
    return np.sort(inner), np.sort(val)


def objective_metrics(rule: DecisionRule, softmax=None) -> Callable:
    from jobtitles.core.activations import scores_from_logits

    def compute(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        pred = rule.decide(scores_from_logits(np.asarray(logits), softmax))
        m = multilabel_metrics(np.asarray(labels).astype(int), pred)
        return {"objective": (m["micro_f1"] + m["subset_accuracy"]) / 2, "micro_f1": m["micro_f1"],
                "subset_accuracy": m["subset_accuracy"]}

    return compute


def search(make_trainer: Callable, train_ds, y: np.ndarray, args: TrainingArguments, rule: DecisionRule,
           n_trials: int, seed: int, out_dir: Path, softmax=None) -> SearchResult:
    """The best trial of `n_trials` on `train_ds`'s rows alone. `make_trainer(args, train, eval, y_train,
    compute_metrics)` builds a Trainer with a model_init (training.search_trainer)."""
    try:
        import optuna
    except ImportError as err:
        raise UserError("hp_search_trials needs Optuna: pip install -e '.[search]' (or set hp_search_trials: 0)") from err
    inner, val = search_split(y, seed)
    trial_args = dataclasses.replace(args, output_dir=str(out_dir), save_strategy="no", eval_strategy="no",
                                     logging_strategy="no")
    trainer = make_trainer(trial_args, train_ds.select(inner), train_ds.select(val), y[inner],
                           objective_metrics(rule, softmax))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = trainer.hyperparameter_search(hp_space=hp_space, compute_objective=lambda m: m["eval_objective"],
                                         n_trials=n_trials, direction="maximize", backend="optuna",
                                         sampler=optuna.samplers.TPESampler(seed=seed))
    return SearchResult(dict(best.hyperparameters), float(best.objective), n_trials, len(inner), len(val))


def searched_args(args: TrainingArguments, result: SearchResult, record_dir: Path, name: str,
                  is_main: bool) -> TrainingArguments:
    """The model's TrainingArguments with the best trial's values; the search recorded in its folder."""
    logger.info(result.line(name))
    if is_main:
        write_json(record_dir / SEARCH_FILE, dataclasses.asdict(result))
    return dataclasses.replace(args, **result.hyperparameters)


def recipe_args(args: TrainingArguments, model_args, seed: int, train_ds, y: np.ndarray, tokenizer,
                labels: list[str], softmax, rule: DecisionRule, out_dir: Path, name: str,
                is_main: bool) -> TrainingArguments:
    """`args`, or (hp_search_trials > 0) the best trial's values of a search on these rows alone. `model_args`:
    the run's ModelArgs (encoder, head recipe, loss)."""
    if not model_args.hp_search_trials:
        return args
    from transformers import DataCollatorWithPadding, PrinterCallback, ProgressCallback

    from jobtitles.train.gpu_settings import pad_multiple
    from jobtitles.train.training import _Trainer, fresh_model, training_loss

    def make_trainer(trial_args, inner_ds, val_ds, y_inner, metrics):
        def init(trial=None):  # every trial: a fresh model with the run's head, fitted on the trial's rows
            return fresh_model(model_args.model_name_or_path, labels, seed, model_args.head_init,
                               model_args.probe_c, inner_ds, y_inner, tokenizer)

        trainer = _Trainer(model=None, model_init=init, args=trial_args, train_dataset=inner_ds, eval_dataset=val_ds,
                           data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple()),
                           processing_class=tokenizer, compute_metrics=metrics,
                           compute_loss_func=training_loss(y_inner, model_args.pos_weight, softmax))
        for default in (ProgressCallback, PrinterCallback):
            trainer.remove_callback(default)
        return trainer

    # a float warmup: the Trainer casts a trial's value to the type of the configured one (an int 0 would drop it)
    base = dataclasses.replace(args, warmup_steps=float(args.warmup_steps))
    result = search(make_trainer, train_ds, y, base, rule, model_args.hp_search_trials, seed, out_dir / "search",
                    softmax)
    return searched_args(base, result, out_dir, name, is_main)
