"""A run that fits the time the user gives it (`time_budget`): the plan (folds, rows cross-validated, optimizer
steps per model) chosen from the throughput the run measured on this machine and this data, before any fold
trains. Pure arithmetic: calibrate.py measures, cv.py follows the plan, deadline.py holds each model to it."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from jobtitles.core.errors import UserError
from jobtitles.train.row_sample import LARGE_SET_ROWS
from jobtitles.train.progress import duration

PLAN_FILE = "plan.json"  # in the run folder: a resumed run follows the plan it started with
TARGET_SHARE = 0.9  # plan to finish at 90% of the budget: what the cost model misses stays within about 10%
STEP_FRACTIONS = (1.0, 0.75, 0.5)  # of the step rule's steps; the quality cost of half is in docs/benchmarks.md
MIN_FOLDS = 3  # fewer folds leave fold models trained on half the rows
MIN_CV_ROWS = 1000  # below this the CV figures say little about any model
CV_SHRINK = 0.7  # each smaller cross-validation sample has 70% of the rows of the one before
FINISH_SECONDS = 20.0  # saving the model, the plots, the report and the run files: about constant
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | None) -> float | None:
    """'90s', '30m', '2h', '1h30m' or a plain number of seconds -> seconds; None or '' / 'none' -> None."""
    if text is None or str(text).strip().lower() in ("", "none", "null"):
        return None
    raw = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        seconds = float(raw)
    elif re.fullmatch(r"(\d+(\.\d+)?[smhd])+", raw):
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", raw))
    else:
        raise UserError(f"time_budget: expected a duration such as 30m, 2h, 1h30m or 900 (seconds), found {text!r}")
    if not 60 <= seconds <= 30 * 86400:
        raise UserError(f"time_budget: expected between 1 minute and 30 days, found {text!r} ({seconds:.0f} s)")
    return seconds


@dataclass(frozen=True)
class Throughput:
    """What the run measured before planning, on this machine and this data (calibrate.py)."""

    seconds_per_step: float  # one optimizer step at the run's batch, after warm-up
    head_seconds_per_title: float  # the linear-probe head: frozen features and the logistic regression
    score_seconds_per_title: float  # scoring a title (a forward pass at the evaluation batch)
    baseline_seconds_per_title: float  # fitting and applying the TF-IDF baseline, per training title (0: off)
    model_overhead_seconds: float  # per model, beyond its steps: building the Trainer, its first batches
    measured_steps: int
    spent_seconds: float  # what the run had spent when it planned: reading, tokenizing, this measurement
    # The fixed part of each cost (calibrate.py measures at two sample sizes): a head, a scoring pass and a baseline
    # fit cost this much whatever their rows; 0 in plans written before it was measured
    head_seconds_per_model: float = 0.0
    score_seconds_per_call: float = 0.0
    baseline_seconds_per_fit: float = 0.0

    def head(self, rows: float) -> float:
        return self.head_seconds_per_model + rows * self.head_seconds_per_title

    def score(self, rows: float) -> float:
        return self.score_seconds_per_call + rows * self.score_seconds_per_title

    def baseline(self, rows: float) -> float:
        return self.baseline_seconds_per_fit + rows * self.baseline_seconds_per_title

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Shape:
    """What the run must do whatever the plan: its rows, its configured folds and which extra parts run."""

    n_rows: int
    n_splits: int
    train_metrics: bool  # fold models also score their own training rows
    baseline: bool
    final_model: bool


@dataclass(frozen=True)
class Plan:
    """The run as it will be done under the budget, with the reasons, for the log, the report and the card."""

    budget_seconds: float
    n_rows: int
    cv_rows: int
    n_splits: int
    step_fraction: float
    fold_steps: int  # optimizer steps of each fold model
    final_steps: int  # optimizer steps of the final model (0: no final model)
    expected_seconds: float  # from the start of the run, what was spent before planning included
    reasons: tuple[str, ...]
    throughput: Throughput

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["reasons"] = list(self.reasons)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Plan":
        values = {k: d[k] for k in (f.name for f in dataclasses.fields(cls))}
        values["reasons"] = tuple(values["reasons"])
        values["throughput"] = Throughput(**values["throughput"])
        return cls(**values)

    def line(self) -> str:
        """One line for the log: what the run will do and when it should end."""
        rows = "all" if self.cv_rows == self.n_rows else f"a stratified sample of {self.cv_rows:,} of"
        return (f"time budget {duration(self.budget_seconds)}: {self.n_splits} folds on {rows} {self.n_rows:,} rows, "
                f"{self.fold_steps} optimizer steps per fold model, {self.final_steps} for the final model; "
                f"expected to take {duration(self.expected_seconds)}")


def fold_train_rows(cv_rows: int, n_splits: int) -> int:
    return cv_rows - math.ceil(cv_rows / n_splits)


def timeline(t: Throughput, shape: Shape, cv_rows: int, n_splits: int, fold_steps: int,
             final_steps: int) -> tuple[list[float], float]:
    """When each model's training should end (fold models, then the final one), and the run's wall time, from
    the run's start: the measurement already spent; per fold its head, training and scoring; the baseline on the
    same folds; the final model's head, training and fit check (and the baseline once more on all rows). Heads
    and the fit check of a large set look at a sample (jobtitles.train.row_sample)."""
    train_rows = fold_train_rows(cv_rows, n_splits)
    test_rows = cv_rows / n_splits
    now, ends = t.spent_seconds, []
    for _ in range(n_splits):
        now += t.head(min(train_rows, LARGE_SET_ROWS)) + fold_steps * t.seconds_per_step + t.model_overhead_seconds
        ends.append(now)
        now += t.score(test_rows) + (t.score(train_rows) if shape.train_metrics else 0)
    if shape.baseline:
        now += n_splits * t.baseline(train_rows)
    if shape.final_model:
        now += t.head(min(shape.n_rows, LARGE_SET_ROWS)) + final_steps * t.seconds_per_step + t.model_overhead_seconds
        ends.append(now)
        now += t.score(min(shape.n_rows, LARGE_SET_ROWS)) + (t.baseline(shape.n_rows) if shape.baseline else 0)
    return ends, now + FINISH_SECONDS


def expected_seconds(t: Throughput, shape: Shape, cv_rows: int, n_splits: int, fold_steps: int,
                     final_steps: int) -> float:
    return timeline(t, shape, cv_rows, n_splits, fold_steps, final_steps)[1]


def deadlines(plan: "Plan", shape: Shape) -> list[float]:
    """Seconds from the run's start by which each model must stop training: its planned end plus a share of the
    budget's slack growing with the time planned so far (the last model keeps a fifth of the slack for the
    parts after training)."""
    ends, total = timeline(plan.throughput, shape, plan.cv_rows, plan.n_splits, plan.fold_steps, plan.final_steps)
    slack = max(plan.budget_seconds - total, 0.0)
    return [end + 0.8 * slack * end / total for end in ends]


def cv_sizes(n_rows: int) -> list[int]:
    """All rows, then each 70% of the one before, down to MIN_CV_ROWS."""
    sizes = [n_rows]
    while int(sizes[-1] * CV_SHRINK) >= MIN_CV_ROWS:
        sizes.append(int(sizes[-1] * CV_SHRINK))
    return sizes


def choose_plan(budget: float, shape: Shape, t: Throughput, steps_for: Callable[[int], int]) -> Plan:
    """The first plan that fits TARGET_SHARE of the budget, in order of what costs least quality: fewer steps per
    model (down to half the step rule's), then fewer folds (down to MIN_FOLDS), then fewer rows cross-validated
    (the final model always trains on all rows). `steps_for(n)`: the step rule for a model on n rows."""
    folds = sorted({shape.n_splits, min(shape.n_splits, MIN_FOLDS)}, reverse=True)
    target = budget * TARGET_SHARE
    for cv_rows in cv_sizes(shape.n_rows):
        for k in folds:
            for fraction in STEP_FRACTIONS:
                fold_steps = max(1, round(steps_for(fold_train_rows(cv_rows, k)) * fraction))
                final_steps = max(1, round(steps_for(shape.n_rows) * fraction)) if shape.final_model else 0
                seconds = expected_seconds(t, shape, cv_rows, k, fold_steps, final_steps)
                if seconds <= target:
                    return Plan(budget, shape.n_rows, cv_rows, k, fraction, fold_steps, final_steps, seconds,
                                plan_reasons(shape, t, cv_rows, k, fraction, steps_for), t)
    smallest = expected_seconds(t, shape, cv_sizes(shape.n_rows)[-1], folds[-1],
                                round(steps_for(fold_train_rows(cv_sizes(shape.n_rows)[-1], folds[-1])) * 0.5),
                                round(steps_for(shape.n_rows) * 0.5) if shape.final_model else 0)
    raise UserError(f"time_budget {duration(budget)} is too short for {shape.n_rows:,} titles on this machine: the "
                    f"smallest plan ({folds[-1]} folds on {cv_sizes(shape.n_rows)[-1]:,} rows, half the steps) needs "
                    f"about {duration(smallest / TARGET_SHARE)} at the measured {t.seconds_per_step:.3f} s per "
                    f"optimizer step; set time_budget to at least that, or lower max_train_rows")


def plan_reasons(shape: Shape, t: Throughput, cv_rows: int, k: int, fraction: float,
                 steps_for: Callable[[int], int]) -> tuple[str, ...]:
    """Why the plan is what it is, one sentence per choice, with the measured figures."""
    out = [f"measured {t.seconds_per_step:.3f} s per optimizer step over {t.measured_steps} steps; the head "
           f"{t.head_seconds_per_model:.1f} s + {t.head_seconds_per_title * 1000:.2f} ms per title, scoring "
           f"{t.score_seconds_per_call:.1f} s + {t.score_seconds_per_title * 1000:.2f} ms per title, the TF-IDF "
           f"baseline {t.baseline_seconds_per_fit:.1f} s + {t.baseline_seconds_per_title * 1000:.2f} ms per title"]
    full = expected_seconds(t, shape, shape.n_rows, shape.n_splits, steps_for(fold_train_rows(shape.n_rows,
                                                                                              shape.n_splits)),
                            steps_for(shape.n_rows) if shape.final_model else 0)
    out.append(f"the unbudgeted run ({shape.n_splits} folds on all rows, the step rule's steps) would take about "
               f"{duration(full)}")
    if fraction < 1:
        out.append(f"each model trains {fraction:.0%} of the step rule's steps to fit the budget")
    if k < shape.n_splits:
        out.append(f"{k} folds instead of {shape.n_splits}: {shape.n_splits} did not fit with half the steps")
    if cv_rows < shape.n_rows:
        out.append(f"cross-validated on a stratified sample of {cv_rows:,} of {shape.n_rows:,} rows (the CV figures "
                   f"are measured on those rows; the final model trains on all of them)")
    if len(out) == 2:
        out.append("the unbudgeted run fits: nothing changed")
    return tuple(out)
