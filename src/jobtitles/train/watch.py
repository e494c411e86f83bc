"""What watches a run while it trains: the progress display and the experiment trackers, handed to each model's
Trainer as callbacks (a fold model or the final one; index = its place in the run, the final model last)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

from transformers import TrainerCallback, TrainingArguments

from jobtitles.train.progress import RunProgress, choose_mode, planned_steps
from jobtitles.train.tracking import Tracking
from jobtitles.train.training import model_epochs, titles_per_step


@dataclasses.dataclass
class RunWatch:
    progress: RunProgress
    tracking: Tracking
    folders: list[str]  # each model's TensorBoard folder

    @classmethod
    def create(cls, training: TrainingArguments, train_sizes: list[int], n_rows: int, min_steps: int,
               progress: str, run_dir: Path, main_process: bool) -> "RunWatch":
        """`train_sizes`: each fold's training rows, in fold order; the final model trains on `n_rows`."""
        sizes = [*train_sizes, n_rows]
        steps = [planned_steps(n, titles_per_step(training), model_epochs(training, n, min_steps), training.max_steps)
                 for n in sizes]
        n = len(train_sizes)
        names = [f"fold {k + 1} of {n}" for k in range(n)] + ["final model"]
        mode = choose_mode(progress) if main_process else "none"  # one display per run, not per process
        tracking = Tracking(list(training.report_to) if main_process else [], run_dir)
        return cls(RunProgress(names, steps, mode), tracking, [f"fold_{k + 1}" for k in range(n)] + ["final"])

    @contextlib.contextmanager
    def model(self, index: int) -> Iterator[list[TrainerCallback]]:
        with self.tracking.model(index, self.progress.names[index], self.folders[index]) as callbacks:
            bar = self.progress.callback(index)
            yield callbacks + ([bar] if bar is not None else [])
