"""Measure, before committing to a plan, what the parts of a run cost on this machine and this data: a few
optimizer steps of a throwaway model on a sample of the training rows (after warm-up steps, which compile and
allocate), its head, scoring and the TF-IDF baseline on the same sample and on half of it (a fixed cost and a
cost per title each)."""

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


def per_title_and_fixed(full_seconds: float, half_seconds: float, n_full: int, n_half: int) -> tuple[float, float]:
    """A cost measured on n_full and n_half rows as (seconds per title, fixed seconds). The slope is kept between
    a quarter of the average cost per title and the average itself, so a noisy pair of timings never plans a large
    part as nearly free (the full sample runs first: a first call's one-time costs only raise the slope)."""
    average = full_seconds / n_full
    slope = (full_seconds - half_seconds) / max(n_full - n_half, 1)
    slope = min(max(slope, 0.25 * average), average)
    return slope, max(0.0, full_seconds - slope * n_full)


def measure(project: ProjectArgs, training: TrainingArguments, data: LabeledData, ds, tokenizer,
            work_dir: Path, clock: Callable[[], float] = time.perf_counter) -> Throughput:
    """The run's costs per step and per title, measured on a sample of its own rows with its own settings; the
    head, scoring and baseline on the sample and on its first half, for their fixed and per-title parts."""
    start = clock()
    rows = sample_rows(len(data), training.seed)
    half = rows[: len(rows) // 2]
    m = project.model

    def timed(work: Callable[[], object]) -> tuple[object, float]:
        t0 = clock()
        out = work()
        return out, clock() - t0

    def new_model(r: np.ndarray):
        return fresh_model(m.model_name_or_path, data.labels, training.seed, m.head_init, m.probe_c, ds.select(r),
                           data.y[r], tokenizer)

    model, head_full = timed(lambda: new_model(rows))
    head = per_title_and_fixed(head_full, timed(lambda: new_model(half))[1], len(rows), len(half))
    args = dataclasses.replace(run_args(training, work_dir, m.precision), max_steps=WARMUP_STEPS + MEASURED_STEPS,
                               warmup_steps=0)
    steps = StepClock(clock)
    sample = ds.select(rows)
    run = FoldRun(model, args, sample, tokenizer, data.y[rows], m.pos_weight,
                  softmax_groups(m.group_loss, data.groups, data.labels), [steps])
    t0 = clock()
    run.train()
    per_step = steps.seconds_per_step(WARMUP_STEPS)
    overhead = max(0.0, clock() - t0 - (WARMUP_STEPS + MEASURED_STEPS) * per_step)
    score = per_title_and_fixed(timed(lambda: run.scores(sample))[1], timed(lambda: run.scores(ds.select(half)))[1],
                                len(rows), len(half))
    baseline = (0.0, 0.0)
    if project.run.baseline:
        def fit(r: np.ndarray) -> None:
            titles = np.asarray([data.titles[i] for i in r], dtype=object)
            fit_baseline(titles, data.y[r], training.seed).predict_proba(titles)
        baseline = per_title_and_fixed(timed(lambda: fit(rows))[1], timed(lambda: fit(half))[1], len(rows), len(half))
    out = Throughput(per_step, head[0], score[0], baseline[0], overhead, MEASURED_STEPS, clock() - start,
                     head_seconds_per_model=head[1], score_seconds_per_call=score[1],
                     baseline_seconds_per_fit=baseline[1])
    logger.info(f"time budget: measured {out.seconds_per_step:.3f} s per optimizer step on {len(rows)} of the "
                f"run's titles (the measurement took {out.spent_seconds:.0f} s)")
    return out
