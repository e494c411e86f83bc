"""How many optimizer steps one model trains for on n rows: the configured epochs, at least `min_train_steps`,
and (`step_growth: sqrt`) above `step_growth_from` rows steps that grow with the square root of the rows, not
the rows: on the benchmark data 2 epochs reached the figures of 4 at 5,840 training rows but not at 2,920
(docs/benchmarks.md, "Training steps and data size")."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from transformers import TrainingArguments

from jobtitles.train.progress import planned_steps
from jobtitles.train.training import model_epochs, titles_per_step

if TYPE_CHECKING:
    from jobtitles.train.project_args import ProjectArgs


def epoch_steps(base: TrainingArguments, n_train: int, min_steps: int) -> int:
    """The steps of the configured epochs (at least `min_steps`; max_steps wins)."""
    return planned_steps(n_train, titles_per_step(base), model_epochs(base, n_train, min_steps), base.max_steps)


def growth_cap(base: TrainingArguments, n_train: int, min_steps: int, growth: str, grow_from: int) -> int | None:
    """The steps the growth rule allows on `n_train` rows when fewer than the configured epochs' (else None)."""
    if growth != "sqrt" or base.max_steps > 0 or n_train <= grow_from:
        return None
    cap = max(min_steps, math.ceil(epoch_steps(base, grow_from, min_steps) * math.sqrt(n_train / grow_from)))
    return cap if cap < epoch_steps(base, n_train, min_steps) else None


def model_steps(base: TrainingArguments, n_train: int, min_steps: int, growth: str = "linear",
                grow_from: int = 0) -> int:
    """The optimizer steps a model trains for on `n_train` rows without a time budget."""
    cap = growth_cap(base, n_train, min_steps, growth, grow_from)
    return cap if cap is not None else epoch_steps(base, n_train, min_steps)


def steps_rule(project: "ProjectArgs", training: TrainingArguments):
    """The run's step rule as a function of a model's training rows."""
    m = project.model
    return lambda n: model_steps(training, n, m.min_train_steps, m.step_growth, m.step_growth_from)


def capped_steps(project: "ProjectArgs", training: TrainingArguments, sizes: list[int]) -> list[int | None]:
    """Per model: the growth rule's steps where they are fewer than the configured epochs', else None (the
    Trainer then runs the epochs, exactly as without the rule)."""
    m = project.model
    return [growth_cap(training, n, m.min_train_steps, m.step_growth, m.step_growth_from) for n in sizes]
