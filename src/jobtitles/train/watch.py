"""What watches a run while it trains: the progress display and the experiment trackers, handed to each model's
Trainer as callbacks (a fold model or the final one; index = its place in the run, the final model last)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

from transformers import TrainerCallback, TrainingArguments

from jobtitles.train.deadline import Deadline
from jobtitles.train.plan_run import Schedule
from jobtitles.train.progress import RunProgress, choose_mode
from jobtitles.train.step_rule import epoch_steps
from jobtitles.train.tracking import Tracking


@dataclasses.dataclass
class RunWatch:
    progress: RunProgress
    tracking: Tracking
    folders: list[str]  # each model's TensorBoard folder
    planned: list[int | None] | None = None  # each model's optimizer steps (a plan's, or the growth rule's)
    schedule: Schedule | None = None  # each model's deadline under a time budget

    @classmethod
    def create(cls, training: TrainingArguments, train_sizes: list[int], n_rows: int, min_steps: int,
               progress: str, run_dir: Path, main_process: bool, planned: list[int | None] | None = None,
               schedule: Schedule | None = None) -> "RunWatch":
        """`train_sizes`: each fold's training rows, in fold order; the final model trains on `n_rows`.
        `planned`: each model's steps, None where it trains the configured epochs."""
        sizes = [*train_sizes, n_rows]
        planned = planned if planned is not None else [None] * len(sizes)
        steps = [p if p is not None else epoch_steps(training, n, min_steps) for p, n in zip(planned, sizes)]
        n = len(train_sizes)
        names = [f"fold {k + 1} of {n}" for k in range(n)] + ["final model"]
        mode = choose_mode(progress) if main_process else "none"  # one display per run, not per process
        tracking = Tracking(list(training.report_to) if main_process else [], run_dir)
        return cls(RunProgress(names, steps, mode), tracking, [f"fold_{k + 1}" for k in range(n)] + ["final"],
                   planned, schedule or Schedule(None))

    def steps(self, index: int) -> int | None:
        """This model's optimizer steps (None: the configured epochs)."""
        return None if self.planned is None else self.planned[index]

    @contextlib.contextmanager
    def model(self, index: int) -> Iterator[list[TrainerCallback]]:
        with self.tracking.model(index, self.progress.names[index], self.folders[index]) as callbacks:
            bar = self.progress.callback(index)
            at = self.schedule.deadline(index)
            deadline = [Deadline(at, self.progress.names[index], self.schedule.clock)] if at is not None else []
            yield callbacks + ([bar] if bar is not None else []) + deadline
