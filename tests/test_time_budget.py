"""time_budget: the plan's arithmetic from measured throughput (fake figures and a fake clock), the deadline that
holds a model to it, and tiny real runs that follow a plan, record it and keep it when resumed."""

from __future__ import annotations

import dataclasses
import math

import pytest
from transformers import TrainerControl, TrainerState

from conftest import tiny_train_argv
from jobtitles.cli import train_main
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import read_json
from jobtitles.train import budget, calibrate, plan_run
from jobtitles.train.budget import Shape, Throughput, choose_plan, deadlines, parse_duration, timeline
from jobtitles.train.calibrate import StepClock
from jobtitles.train.deadline import Deadline
from jobtitles.train.plan_run import Schedule

# 0.25 s a step, 2 ms a title for the head, 1 ms to score, 1 ms for the baseline, 3 s a model, 30 s spent
T = Throughput(0.25, 0.002, 0.001, 0.001, 3.0, 20, 30.0)
SHAPE = Shape(n_rows=100_000, n_splits=5, train_metrics=True, baseline=True, final_model=True)


def steps_for(n: int) -> int:
    return math.ceil(n / 32) * 4  # 4 epochs at batch 32, no growth cap: the arithmetic alone


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("900", 900),
                                          ("90s", 90), ("1.5h", 5400), (" 45 m ", 2700)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text,found", [("soon", "found 'soon'"), ("10x", "found '10x'"), ("30", r"\(30 s\)"),
                                        ("40d", r"\(3456000 s\)")])
def test_bad_durations_name_what_was_expected(text, found):
    with pytest.raises(UserError, match=rf"time_budget: expected .*{found}"):
        parse_duration(text)
    assert parse_duration(None) is None and parse_duration("none") is None


def test_timeline_adds_every_part():
    small = Shape(1000, 2, train_metrics=False, baseline=False, final_model=False)
    ends, total = timeline(T, small, 1000, 2, 100, 0)
    # each fold: 500 training rows x 2 ms head + 100 steps x 0.25 s + 3 s; then 500 test rows x 1 ms
    assert ends == pytest.approx([30 + 1 + 25 + 3, 30 + 2 * 29 + 0.5])
    assert total == pytest.approx(30 + 2 * 29.5 + budget.FINISH_SECONDS)


def test_fixed_costs_are_paid_once_per_model_call_and_fit():
    t = dataclasses.replace(T, head_seconds_per_model=2.0, score_seconds_per_call=1.0, baseline_seconds_per_fit=0.5)
    small = Shape(1000, 2, train_metrics=True, baseline=True, final_model=True)
    ends, total = timeline(t, small, 1000, 2, 100, 200)
    fold = 2 + 1 + 25 + 3  # fixed + 500 rows x 2 ms head, 100 steps, the model's overhead
    scoring = (1 + 0.5) + (1 + 0.5)  # the test rows, then the training rows
    final_start = 30 + 2 * (fold + scoring) + 2 * (0.5 + 0.5)  # then the baseline on both folds
    assert ends == pytest.approx([30 + fold, 30 + 2 * fold + scoring, final_start + 2 + 2 + 50 + 3])
    assert total == pytest.approx(ends[-1] + (1 + 1) + (0.5 + 1) + budget.FINISH_SECONDS)


@pytest.mark.parametrize("full,half,per_title,fixed", [
    (9.0, 6.0, 0.003, 3.0),  # 2,000 rows 9 s, 1,000 rows 6 s: 3 ms a title and 3 s whatever the rows
    (9.0, 9.5, 0.25 * 0.0045, 9.0 - 2000 * 0.25 * 0.0045),  # noise: the slope is kept at a quarter of the average
    (9.0, 1.0, 0.0045, 0.0),  # never above the average: no negative fixed cost
])
def test_a_cost_measured_at_two_sizes_splits_into_fixed_and_per_title(full, half, per_title, fixed):
    assert calibrate.per_title_and_fixed(full, half, 2000, 1000) == pytest.approx((per_title, fixed))


def test_generous_budget_keeps_the_unbudgeted_run():
    plan = choose_plan(10 * 3600, SHAPE, T, steps_for)
    assert (plan.n_splits, plan.cv_rows, plan.step_fraction) == (5, 100_000, 1.0)
    assert plan.fold_steps == steps_for(80_000) and plan.final_steps == steps_for(100_000)
    assert plan.reasons[-1] == "the unbudgeted run fits: nothing changed"


def test_plans_give_up_steps_then_folds_then_rows_and_always_fit():
    full = budget.expected_seconds(T, SHAPE, 100_000, 5, steps_for(80_000), steps_for(100_000))
    seen = []
    for share in (0.9, 0.7, 0.55, 0.4, 0.25, 0.15):
        plan = choose_plan(full * share, SHAPE, T, steps_for)
        assert plan.expected_seconds <= plan.budget_seconds * budget.TARGET_SHARE
        assert plan.final_steps == round(steps_for(100_000) * plan.step_fraction)  # the final model: all rows
        seen.append((plan.cv_rows, plan.n_splits, plan.step_fraction))
    # each tighter budget gives up something, in order of preference, and never gets a bigger plan back
    assert seen[0] == (100_000, 5, 0.75)
    assert seen[1] == (100_000, 5, 0.5)
    assert seen[2][:2] == (100_000, 3)
    assert seen[-1][0] < 100_000 and seen[-1][1] == 3
    assert seen == sorted(seen, reverse=True)
    tight = choose_plan(full * 0.15, SHAPE, T, steps_for)
    assert any("stratified sample" in r for r in tight.reasons) and any("3 folds instead of 5" in r
                                                                         for r in tight.reasons)


def test_a_budget_too_short_names_the_smallest_that_works():
    with pytest.raises(UserError, match=r"time_budget 1m00s is too short for 100,000 titles on this machine: the "
                                        r"smallest plan \(3 folds on 1,\d{3} rows, half the steps\) needs about "
                                        r"\d+m\d\ds .*set time_budget to at least that"):
        choose_plan(60, SHAPE, T, steps_for)


def test_deadlines_leave_slack_in_order():
    plan = choose_plan(3 * 3600, SHAPE, T, steps_for)
    ends, total = timeline(T, SHAPE, plan.cv_rows, plan.n_splits, plan.fold_steps, plan.final_steps)
    at = deadlines(plan, SHAPE)
    assert len(at) == plan.n_splits + 1
    assert all(a > e for a, e in zip(at, ends)) and at == sorted(at)
    assert at[-1] < plan.budget_seconds  # the last model leaves time for the parts after it


def test_step_clock_measures_the_steady_state():
    clock = FakeClock(0.0)
    steps = StepClock(clock)
    for t in (5.0, 6.0, 6.5, 7.0, 7.5, 8.0):  # two slow warm-up steps, then 0.5 s a step
        clock.now = t
        steps.on_step_end(None, None, None)
    assert steps.seconds_per_step(warmup=2) == pytest.approx(0.5)


def test_deadline_stops_training_at_the_first_step_past_it(caplog):
    clock = FakeClock(100.0)
    stop = Deadline(at=110.0, name="fold 2 of 5", clock=clock)
    state, control = TrainerState(max_steps=50), TrainerControl()
    for step, now in ((1, 105.0), (2, 109.9), (3, 110.2)):
        state.global_step, clock.now = step, now
        stop.on_step_end(None, state, control)
        assert control.should_training_stop == (step == 3)
    assert stop.stopped_at == 3
    assert "fold 2 of 5: stopped at step 3 of 50 to keep to the time budget" in caplog.text


def test_a_resumed_schedule_starts_where_its_last_completed_model_should_have_ended():
    from jobtitles.train.project_args import ProjectArgs, RunArgs

    plan = choose_plan(3 * 3600, SHAPE, T, steps_for)
    project = ProjectArgs(run=RunArgs(n_splits=5, time_budget="3h"))
    clock = FakeClock(5000.0)
    schedule = Schedule(plan, project, clock)
    at = deadlines(plan, SHAPE)
    assert schedule.deadline(0) == pytest.approx(5000.0 + at[0])
    schedule.resumed_after(2)  # folds 1 and 2 were done by an earlier session
    assert schedule.deadline(2) == pytest.approx(5000.0 + at[2] - at[1])
    assert Schedule(None).deadline(0) is None


def fake_measure(seconds_per_step: float):
    def measure(project, training, data, ds, tokenizer, work_dir, clock=None):
        return Throughput(seconds_per_step, 0.001, 0.0005, 0.001, 0.5, 20, 1.0)
    return measure


@pytest.fixture
def far_deadlines(monkeypatch):
    """The plan's figures are fake here: no model may stop at a deadline made from them."""
    monkeypatch.setattr(plan_run, "deadlines", lambda plan, shape: [1e9] * (plan.n_splits + 1))


def test_models_past_their_deadline_stop_and_the_report_says_so(tiny_csv, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(calibrate, "measure", fake_measure(0.5))
    monkeypatch.setattr(plan_run, "deadlines", lambda plan, shape: [0.0] * (plan.n_splits + 1))
    out = tmp_path / "run"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out, "--time_budget", "100s")) == 0
    res = read_json(out / "cv_results.json")
    assert [f["steps"] for f in res["folds"]] == [1, 1] and res["final_steps"] == 1
    assert ("stopped at their deadline to keep to the budget: fold 1 (1 of 40), fold 2 (1 of 40), final model "
            "(1 of 42)") in (out / "report.md").read_text(encoding="utf-8")


def test_a_tiny_run_under_a_budget_follows_and_records_its_plan(tiny_csv, tiny_model_dir, tmp_path, monkeypatch,
                                                                far_deadlines):
    # a measured 0.5 s a step: 2 folds x 81 steps + 84 for the final model (min_train_steps 80) would take about
    # 2m25s, 75% of the steps 1m55s; 1m40s (90 s planned) leaves half the steps: 40 and 42
    monkeypatch.setattr(calibrate, "measure", fake_measure(0.5))
    out = tmp_path / "run"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out, "--time_budget", "100s")) == 0
    plan = read_json(out / "plan.json")
    assert (plan["n_splits"], plan["cv_rows"], plan["step_fraction"]) == (2, 85, 0.5)
    assert plan["fold_steps"] == 40 and plan["final_steps"] == 42
    res = read_json(out / "cv_results.json")
    assert res["plan"] == plan and read_json(out / "run_info.json")["plan"] == plan
    assert [f["steps"] for f in res["folds"]] == [40, 40] and res["final_steps"] == 42
    assert set(res["timing"]["parts"]) >= {"load", "tokenize", "calibrate", "fold_1_train", "fold_2_score",
                                           "baseline", "decisions", "final_train", "label_issues", "other"}
    assert sum(res["timing"]["parts"].values()) == pytest.approx(res["timing"]["total_seconds"], abs=0.05)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Budget 1m40s: 2 folds on 85 of 85 rows, 40 optimizer steps per fold model, 42 for the final" in report
    assert "each model trains 50% of the step rule's steps" in report
    assert "Time budget: Budget 1m40s" in (out / "model" / "README.md").read_text(encoding="utf-8")
    assert not (out / "calibration").exists()


def test_a_tight_budget_cross_validates_a_stratified_sample(tiny_csv, tiny_model_dir, tmp_path, monkeypatch,
                                                            far_deadlines):
    # 40 epochs and no step floor, so steps grow with the rows: at 0.25 s a step only 41 of the 85 rows with
    # half the steps (3 x 40 fold steps, 120 final) fit 90 s; 59 rows would need about 98 s
    monkeypatch.setattr(calibrate, "measure", fake_measure(0.25))
    monkeypatch.setattr(budget, "MIN_CV_ROWS", 40)
    out = tmp_path / "run"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--time_budget", "100s", "--n_splits", "3",
                           "--min_train_steps", "0", "--num_train_epochs", "40", "--label_issues", "false")
    assert train_main(argv) == 0
    plan, res = read_json(out / "plan.json"), read_json(out / "cv_results.json")
    assert (plan["cv_rows"], plan["n_splits"], plan["step_fraction"], plan["fold_steps"]) == (41, 3, 0.5, 40)
    assert res["n_rows"] == 41 and plan["final_steps"] == 120
    assert sum(f["n_test"] for f in res["folds"]) == plan["cv_rows"]
    assert read_json(out / "final_result.json")["final_fit_check"]  # the final model: all rows
    card = (out / "model" / "README.md").read_text(encoding="utf-8")
    assert "Trained on 85 titles" in card
    assert f"stratified sample of {plan['cv_rows']:,} of the 85 titles" in card
    assert f"stratified sample of {plan['cv_rows']:,} of the 85 titles" in (out / "report.md").read_text()


def test_a_resumed_run_keeps_its_plan(tiny_csv, tiny_model_dir, tmp_path, monkeypatch, far_deadlines):
    monkeypatch.setattr(calibrate, "measure", fake_measure(0.5))
    out = tmp_path / "run"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--time_budget", "100s", "--final_model", "false")
    assert train_main(argv) == 0
    first = read_json(out / "plan.json")
    (out / "cv_results.json").unlink()  # as if killed after the folds
    info = read_json(out / "run_info.json")
    info.pop("finished_at")
    (out / "run_info.json").write_text(__import__("json").dumps(info))

    def must_not_measure(*args, **kwargs):
        raise AssertionError("a resumed run measured again")
    monkeypatch.setattr(calibrate, "measure", must_not_measure)
    assert train_main(argv) == 0
    assert read_json(out / "plan.json") == first == read_json(out / "cv_results.json")["plan"]


def test_budget_and_max_steps_together_are_refused_before_any_data(tiny_model_dir, tmp_path, capsys):
    missing = tmp_path / "missing.csv"  # never read: the settings are checked first
    assert train_main(tiny_train_argv(missing, tiny_model_dir, tmp_path / "run", "--time_budget", "30m",
                                      "--max_steps", "10")) == 2
    assert "time_budget 30m and max_steps 10 are both set" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bad_budget_is_one_line(tiny_csv, tiny_model_dir, tmp_path, capsys):
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, tmp_path / "run", "--time_budget", "soon")) == 2
    err = capsys.readouterr().err
    assert "time_budget: expected a duration such as 30m, 2h, 1h30m or 900 (seconds), found 'soon'" in err
    assert "Traceback" not in err


def test_plan_round_trips_through_json():
    plan = choose_plan(3 * 3600, SHAPE, T, steps_for)
    again = budget.Plan.from_json(__import__("json").loads(__import__("json").dumps(plan.to_json())))
    assert again == plan and dataclasses.asdict(again.throughput) == dataclasses.asdict(T)
