"""Training progress for people: a bar per model (fold or final) with the time left for that model and for the
whole run on a terminal, a log line a minute elsewhere (CI, files), nothing with `progress: none`.

The run's time left is the steps still to train (this model's and every later model's) at the seconds per step
measured so far in this run; scoring, the baseline and the report around training are not in it."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Callable

from tqdm.auto import tqdm
from transformers import TrainerCallback

from jobtitles.core.log import logger

LOG_EVERY_S = 60.0  # log mode: one line a minute keeps a CI log readable and a long run visibly alive
BAR_REFRESH_S = 1.0


def planned_steps(n_train: int, batch_per_step: int, epochs: float, max_steps: int) -> int:
    """The optimizer steps the Trainer will take for `n_train` rows (its own rule: batches per epoch x epochs,
    rounded up; `max_steps` wins)."""
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(math.ceil(n_train / max(batch_per_step, 1)) * epochs))


def duration(seconds: float) -> str:
    """'45s', '3m05s', '2h04m': short enough for a bar's postfix."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def choose_mode(setting: str, stream=None) -> str:
    """'bar', 'log' or 'none' for a `progress` setting; auto is a bar only where a person watches a terminal."""
    if setting != "auto":
        return setting
    stream = sys.stderr if stream is None else stream
    return "bar" if getattr(stream, "isatty", lambda: False)() else "log"


@dataclasses.dataclass
class RunProgress:
    """The run's models in training order with their planned steps; counts what has been trained so far."""

    names: list[str]
    steps: list[int]
    mode: str
    clock: Callable[[], float] = time.monotonic
    trained_steps: int = 0
    trained_seconds: float = 0.0

    def skip(self, index: int) -> None:
        """A model done by an earlier run (resume): nothing left to train for it."""
        self.steps[index] = 0

    def seconds_per_step(self, steps: int = 0, seconds: float = 0.0) -> float | None:
        done = self.trained_steps + steps
        return (self.trained_seconds + seconds) / done if done else None

    def run_left(self, index: int, steps_left_here: int, per_step: float | None) -> float | None:
        if per_step is None:
            return None
        return (steps_left_here + sum(self.steps[index + 1:])) * per_step

    def callback(self, index: int) -> TrainerCallback | None:
        return None if self.mode == "none" else ModelProgress(self, index)

    def fold_line(self, index: int) -> str:
        """'; about 12m30s of training left in the run' once a step has been timed, else ''."""
        per_step = self.seconds_per_step()
        if per_step is None:
            return ""
        return f"; about {duration(sum(self.steps[index:]) * per_step)} of training left in the run"


class ModelProgress(TrainerCallback):
    """Progress of one model's training, in the run's terms: which model, its steps, time left here and in the
    run. Replaces the Trainer's own ProgressCallback/PrinterCallback (a bare bar, and a dict printed per log)."""

    def __init__(self, run: RunProgress, index: int) -> None:
        self.run, self.index = run, index
        self.bar = None
        self.start = self.last_shown = 0.0
        self.loss: float | None = None
        self.total = run.steps[index]

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.total = state.max_steps or self.total
        self.run.steps[self.index] = self.total  # the Trainer's count replaces the plan
        self.start = self.last_shown = self.run.clock()
        if self.run.mode == "bar":
            self.bar = tqdm(total=self.total, desc=self.run.names[self.index], unit="step", dynamic_ncols=True,
                            leave=False, file=sys.stderr)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and isinstance(logs.get("loss"), (int, float)):
            self.loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
        now = self.run.clock()
        every = BAR_REFRESH_S if self.bar is not None else LOG_EVERY_S
        first = self.bar is not None and state.global_step == 1  # a bar says the run's time left at once
        if first or now - self.last_shown >= every:
            self.last_shown = now
            self.show(state.global_step, now - self.start)

    def status(self, step: int, elapsed: float) -> str:
        """'step 120 of 400, 1m20s left here, about 9m10s of training left in the run, loss 0.1234'."""
        per_step = self.run.seconds_per_step(step, elapsed)
        parts = [f"step {step} of {self.total}"]
        if per_step is not None:
            parts.append(f"{duration((self.total - step) * per_step)} left here")
            parts.append(f"about {duration(self.run.run_left(self.index, self.total - step, per_step))} of "
                         "training left in the run")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        return ", ".join(parts)

    def show(self, step: int, elapsed: float) -> None:
        if self.bar is not None:  # tqdm shows the steps and this model's time left itself
            per_step = self.run.seconds_per_step(step, elapsed)
            left = self.run.run_left(self.index, self.total - step, per_step)
            text = f"run: ~{duration(left)} left" if left is not None else ""
            self.bar.set_postfix_str(text + (f", loss {self.loss:.4f}" if self.loss is not None else ""))
        else:
            logger.info(f"{self.run.names[self.index]}: {self.status(step, elapsed)}")

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.run.trained_steps += state.global_step
        self.run.trained_seconds += self.run.clock() - self.start
        self.run.steps[self.index] = 0
        if self.bar is not None:
            self.bar.close()
            self.bar = None
