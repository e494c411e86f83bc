"""A budgeted run's plan in the run folder: measured and chosen once (plan.json), followed by a resumed run, and
turned into what training needs: the rows cross-validated, each model's steps and each model's deadline."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from transformers import TrainingArguments

from jobtitles.core.data import LabeledData
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import read_json, write_json
from jobtitles.core.log import logger
from jobtitles.train.row_sample import stratified_rows
from jobtitles.train.budget import PLAN_FILE, Plan, Shape, Throughput, choose_plan, deadlines
from jobtitles.train.project_args import ProjectArgs
from jobtitles.train.run_folder import RUN_INFO
from jobtitles.train.step_rule import steps_rule


def check_budget_settings(project: ProjectArgs, training: TrainingArguments) -> None:
    """Settings a budget cannot follow, refused before any data is read."""
    if project.run.budget_seconds() is not None and training.max_steps > 0:
        raise UserError(f"time_budget {project.run.time_budget} and max_steps {training.max_steps} are both set: the "
                        "budget chooses the steps per model; unset one of them")


def shape_of(project: ProjectArgs, n_rows: int) -> Shape:
    return Shape(n_rows, project.run.n_splits, project.run.report_train_metrics, project.run.baseline,
                 project.run.final_model)


def saved_plan(run_dir: Path) -> Plan | None:
    path = run_dir / PLAN_FILE
    return Plan.from_json(read_json(path)) if path.is_file() else None


def make_plan(project: ProjectArgs, training: TrainingArguments, n_rows: int, throughput: Throughput,
              run_dir: Path) -> Plan:
    """The plan for what was measured, recorded in the run folder (plan.json, run_info.json)."""
    plan = choose_plan(project.run.budget_seconds(), shape_of(project, n_rows), throughput,
                       steps_rule(project, training))
    write_json(run_dir / PLAN_FILE, plan.to_json())
    write_json(run_dir / RUN_INFO, {**read_json(run_dir / RUN_INFO), "plan": plan.to_json()})
    return plan


def announce(plan: Plan, resumed: bool) -> None:
    logger.info(plan.line() + (" (the plan this run started with: resuming)" if resumed else ""))
    for reason in plan.reasons:
        logger.info(f"  plan: {reason}")


def cv_sample(plan: Plan, data: LabeledData, seed: int) -> np.ndarray | None:
    """The rows cross-validated (a stratified sample, sorted), or None for all rows."""
    return stratified_rows(data.y, plan.cv_rows, seed)


class Schedule:
    """Each model's deadline in this process's clock: from the run's start (a resumed run starts where its last
    completed model should have ended)."""

    def __init__(self, plan: Plan | None, project: ProjectArgs | None = None, clock=time.monotonic) -> None:
        self.clock = clock
        self.at = deadlines(plan, shape_of(project, plan.n_rows)) if plan is not None and project else None
        self.start = clock()

    def resumed_after(self, done: int) -> None:
        """`done` models were completed by an earlier session."""
        if self.at is not None and done > 0:
            self.start = self.clock() - self.at[done - 1]

    def deadline(self, index: int) -> float | None:
        return None if self.at is None else self.start + self.at[index]
