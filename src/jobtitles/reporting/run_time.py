"""The report's and the card's account of time: a time budget's plan and why, and where the run's wall time
went, part by part (the share not spent training the transformer is the figure to watch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobtitles.train.part_times import training_share
from jobtitles.train.progress import duration

if TYPE_CHECKING:
    from jobtitles.selection.run_result import RunResult


def rows_line(r: "RunResult") -> str:
    """How many rows the CV figures were measured on, when a time budget cross-validated a sample."""
    plan = r.plan
    if not plan or plan["cv_rows"] >= plan["n_rows"]:
        return ""
    return (f"The CV figures are measured on a stratified sample of {plan['cv_rows']:,} of the {plan['n_rows']:,} "
            "titles (time budget); the final model trains on all of them.")


def final_rows(r: "RunResult") -> int:
    return r.plan["n_rows"] if r.plan else r.n_rows


def budget_text(r: "RunResult") -> str:
    plan = r.plan
    if not plan:
        return "No time budget (`time_budget` unset): every model trains the step rule's steps."
    total = r.timing.total_seconds
    kept = (f" The run took {duration(total)} ({total / plan['budget_seconds']:.0%} of the budget)."
            if total else "")
    lines = [f"Budget {duration(plan['budget_seconds'])}: {plan['n_splits']} folds on {plan['cv_rows']:,} of "
             f"{plan['n_rows']:,} rows, {plan['fold_steps']} optimizer steps per fold model, {plan['final_steps']} "
             f"for the final model ({plan['step_fraction']:.0%} of the step rule's), expected "
             f"{duration(plan['expected_seconds'])}.{kept}", ""]
    lines += [f"- {reason}" for reason in plan["reasons"]]
    stopped = [f"fold {f.fold + 1} ({f.steps} of {plan['fold_steps']})" for f in r.folds
               if f.steps is not None and f.steps < plan["fold_steps"]]
    if r.final_steps is not None and r.final_steps < plan["final_steps"]:
        stopped.append(f"final model ({r.final_steps} of {plan['final_steps']})")
    if stopped:
        lines.append(f"- stopped at their deadline to keep to the budget: {', '.join(stopped)}")
    return "\n".join(lines)


def time_table(r: "RunResult") -> str:
    parts, total = r.timing.parts, r.timing.total_seconds
    if not parts or not total:
        return "Not recorded (a run made before parts were timed)."
    rows = ["| part | seconds | share |", "|---|---|---|"]
    rows += [f"| {name} | {sec:.1f} | {sec / total:.1%} |" for name, sec in parts.items()]
    share = training_share(parts, total)
    return (f"Wall time {total:.0f} s; training the transformer (the `_train` parts) {share:.1%} of it, "
            f"everything else {1 - share:.1%}.\n\n" + "\n".join(rows))
