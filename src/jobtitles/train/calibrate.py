"""Measure, before committing to a plan, what the parts of a run cost on this machine and this data: a few
optimizer steps of a throwaway model on a sample of the training rows (after warm-up steps, which compile and
allocate), its head, scoring and the TF-IDF baseline on the same sample."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
from transformers import TrainerCallback, TrainingArguments

from jobtitles.core.baseline import fit_baseline
from jobtitles.core.data import LabeledData
from jobtitles.core.label_groups import softmax_groups
from jobtitles.core.log import logger
from jobtitles.train.budget import Throughput
from jobtitles.train.project_args import ProjectArgs
from jobtitles.train.training import FoldRun, fresh_model, run_args

WARMUP_STEPS = 5  # the first steps allocate, and on a GPU compile: not the steady state
MEASURED_STEPS = 20
SAMPLE_ROWS = 2000  # enough titles for a stable head, scoring and baseline cost per title


class StepClock(TrainerCallback):
    """The time of every optimizer step's end; steady-state seconds per step after the warm-up."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(self.clock())

    def seconds_per_step(self, warmup: int) -> float:
        timed = self.ends[warmup:]
        if len(timed) < 2:
            raise ValueError(f"expected at least {warmup + 2} timed steps, found {len(self.ends)}")
        return (timed[-1] - timed[0]) / (len(timed) - 1)


def sample_rows(n_rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_rows)[:min(n_rows, SAMPLE_ROWS)])


def measure(project: ProjectArgs, training: TrainingArguments, data: LabeledData, ds, tokenizer,
            work_dir: Path, clock: Callable[[], float] = time.perf_counter) -> Throughput:
    """The run's costs per step and per title, measured on a sample of its own rows with its own settings."""
    start = clock()
    rows = sample_rows(len(data), training.seed)
    sample = ds.select(rows)
    m = project.model
    t0 = clock()
    model = fresh_model(m.model_name_or_path, data.labels, training.seed, m.head_init, m.probe_c, sample,
                        data.y[rows], tokenizer)
    head = (clock() - t0) / len(rows)
    args = dataclasses.replace(run_args(training, work_dir, m.precision), max_steps=WARMUP_STEPS + MEASURED_STEPS,
                               warmup_steps=0)
    steps = StepClock(clock)
    run = FoldRun(model, args, sample, tokenizer, data.y[rows], m.pos_weight,
                  softmax_groups(m.group_loss, data.groups, data.labels), [steps])
    t0 = clock()
    run.train()
    per_step = steps.seconds_per_step(WARMUP_STEPS)
    overhead = max(0.0, clock() - t0 - (WARMUP_STEPS + MEASURED_STEPS) * per_step)
    t0 = clock()
    run.scores(sample)
    score = (clock() - t0) / len(rows)
    baseline = 0.0
    if project.run.baseline:
        t0 = clock()
        titles = np.asarray([data.titles[i] for i in rows], dtype=object)
        fit_baseline(titles, data.y[rows], training.seed).predict_proba(titles)
        baseline = (clock() - t0) / len(rows)
    out = Throughput(per_step, head, score, baseline, overhead, MEASURED_STEPS, clock() - start)
    logger.info(f"time budget: measured {out.seconds_per_step:.3f} s per optimizer step on {len(rows)} of the "
                f"run's titles (the measurement took {out.spent_seconds:.0f} s)")
    return out
