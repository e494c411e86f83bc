"""Each model of a budgeted run stops training at its deadline, so the run ends near the time the user gave
even where the measured throughput was too hopeful (a busier machine, longer titles later in the data)."""

from __future__ import annotations

import time
from typing import Callable

from transformers import TrainerCallback

from jobtitles.core.log import warn
from jobtitles.train.progress import duration


class Deadline(TrainerCallback):
    """Stops the Trainer at the first step that ends after `at` (a `clock` time); records the step."""

    def __init__(self, at: float, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.at = at
        self.name = name
        self.clock = clock
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.stopped_at is None and self.clock() >= self.at:
            self.stopped_at = state.global_step
            control.should_training_stop = True
            warn(f"{self.name}: stopped at step {state.global_step} of {state.max_steps} to keep to the time "
                 f"budget (the run is {duration(self.clock() - self.at)} behind its plan at this point)")
        return control
