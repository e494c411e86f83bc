"""How many optimizer steps one model trains for on n rows: the configured epochs, at least `min_train_steps`,
and (`train_steps_growth`) fewer epochs on large sets, where far fewer steps than 4 full epochs reach the same
quality (the measurement is in docs/benchmarks.md, "Training steps and data size")."""

from __future__ import annotations


from transformers import TrainingArguments

from jobtitles.train.progress import planned_steps
from jobtitles.train.training import model_epochs, titles_per_step


def model_steps(base: TrainingArguments, n_train: int, min_steps: int) -> int:
    """The optimizer steps a model trains for on `n_train` rows without a time budget."""
    return planned_steps(n_train, titles_per_step(base), model_epochs(base, n_train, min_steps), base.max_steps)
