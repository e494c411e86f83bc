"""Experiment tracking with the real MLflow and TensorBoard (offline, a store in a temp folder), the training
progress display, and what run_info.json records about the run."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_train_argv

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="module")
def tracked_run(tiny_csv, tiny_model_dir, tmp_path_factory):
    """One short real run logged to MLflow (sqlite store + artifacts in a temp folder) and TensorBoard, with the
    progress bar on (as on a terminal); its stderr captured."""
    from jobtitles.cli import train_main

    home = tmp_path_factory.mktemp("tracking")
    out = home / "run"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "job titles"}
    saved_env, cwd = {k: os.environ.get(k) for k in env}, os.getcwd()
    os.environ.update(env)
    os.chdir(home)  # MLflow's default artifact root (./mlruns) lands in the temp folder
    err, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
            assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out, "--min_train_steps", "20",
                                              "--report_to", "mlflow,tensorboard", "--progress", "bar")) == 0
    finally:
        os.chdir(cwd)
        for k, v in saved_env.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"out": out, "home": home, "uri": env["MLFLOW_TRACKING_URI"], "stderr": err.getvalue(),
            "stdout": stdout.getvalue(), "cv": json.loads((out / "cv_results.json").read_text())}


def mlflow_runs(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow, mlflow.search_runs(experiment_names=["job titles"])


def test_one_parent_run_with_settings_figures_rule_and_files(tracked_run):
    mlflow, runs = mlflow_runs(tracked_run["uri"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1 and parents.iloc[0]["status"] == "FINISHED"
    parent = parents.iloc[0]
    cv = tracked_run["cv"]
    shipped = cv["decision_rule"]["variant"]
    assert parent["params.n_splits"] == "2" and parent["params.learning_rate"] == "0.005"
    assert parent["params.max_length"] == "16"
    for metric in ("micro_f1", "macro_f1", "subset_accuracy"):
        assert parent[f"metrics.cv_{metric}_mean"] == pytest.approx(cv["summary"][shipped][metric]["mean"])
        assert parent[f"metrics.cv_{metric}_std"] == pytest.approx(cv["summary"][shipped][metric]["std"])
        assert parent[f"metrics.baseline_{metric}_mean"] == pytest.approx(cv["summary"]["baseline"][metric]["mean"])
    for label, figures in cv["per_label"][shipped].items():
        assert parent[f"metrics.label/{label}/f1"] == pytest.approx(figures["f1"])
    client = mlflow.tracking.MlflowClient()
    history = client.get_metric_history(parent.run_id, "fold_micro_f1")
    assert [(h.step, h.value) for h in history] == \
        [(k + 1, pytest.approx(v)) for k, v in enumerate(parent_fold_values(cv, shipped, "micro_f1"))]
    artifacts = {a.path for a in client.list_artifacts(parent.run_id)}
    assert {"report.md", "cv_results.json", "run_info.json", "decision_rule.json", "plots", "model"} <= artifacts
    model_files = {Path(a.path).name for a in client.list_artifacts(parent.run_id, "model")}
    assert {"config.json", "model.safetensors", "README.md"} <= model_files
    rule = json.loads(Path(client.download_artifacts(parent.run_id, "decision_rule.json",
                                                     str(tracked_run["home"] / "dl"))).read_text())
    saved = json.loads((tracked_run["out"] / "model" / "config.json").read_text())
    assert rule["decision_thresholds"] == saved["decision_thresholds"]


def parent_fold_values(cv: dict, shipped: str, metric: str) -> list[float]:
    from jobtitles.selection.run_result import FoldRecord

    return [FoldRecord.from_json(f).metrics[shipped][metric] for f in cv["folds"]]


def test_a_child_run_per_model_with_its_loss_curve_and_test_figures(tracked_run):
    mlflow, runs = mlflow_runs(tracked_run["uri"])
    parent_id = runs[runs["tags.mlflow.parentRunId"].isna()].iloc[0].run_id
    children = runs[runs["tags.mlflow.parentRunId"] == parent_id]
    assert sorted(children["tags.mlflow.runName"]) == ["final model", "fold 1 of 2", "fold 2 of 2"]
    assert set(children["status"]) == {"FINISHED"}
    client = mlflow.tracking.MlflowClient()
    cv = tracked_run["cv"]
    shipped = cv["decision_rule"]["variant"]
    for k, value in enumerate(parent_fold_values(cv, shipped, "micro_f1")):
        child = children[children["tags.mlflow.runName"] == f"fold {k + 1} of 2"].iloc[0]
        losses = client.get_metric_history(child.run_id, "loss")
        logged = [(h["step"], h["loss"]) for h in cv["folds"][k]["loss_history"]]
        assert [(h.step, pytest.approx(h.value)) for h in losses] == logged and len(logged) >= 2
        assert child["metrics.test_micro_f1"] == pytest.approx(value)
        assert child["params.learning_rate"] == "0.005"


def test_tensorboard_event_files_per_model_and_for_the_run(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tracked_run["out"] / "tensorboard"
    assert sorted(p.name for p in board.iterdir()) == ["cv", "final", "fold_1", "fold_2"]
    fold = EventAccumulator(str(board / "fold_1"))
    fold.Reload()
    logged = [(h["step"], h["loss"]) for h in tracked_run["cv"]["folds"][0]["loss_history"]]
    assert [(e.step, pytest.approx(e.value, rel=1e-5)) for e in fold.Scalars("train/loss")] == logged
    run = EventAccumulator(str(board / "cv"))
    run.Reload()
    shipped = tracked_run["cv"]["decision_rule"]["variant"]
    mean = tracked_run["cv"]["summary"][shipped]["micro_f1"]["mean"]
    assert run.Scalars("cv_micro_f1_mean")[0].value == pytest.approx(mean, rel=1e-6)
    assert [e.step for e in run.Scalars("fold/micro_f1")] == [1, 2]


def test_progress_bar_names_the_model_and_the_run_s_time_left(tracked_run):
    err = tracked_run["stderr"]
    assert "fold 1 of 2:" in err and "fold 2 of 2:" in err and "final model:" in err  # the bars' descriptions
    assert "run: ~" in err and "left" in err
    assert "{'loss'" not in tracked_run["stdout"] + err  # the Trainer's printed log dicts are gone
    assert "of training left in the run" in err  # the fold lines, once a model has been timed


def test_run_info_records_command_times_machine_and_tree_state(tracked_run):
    info = json.loads((tracked_run["out"] / "run_info.json").read_text())
    assert "--report_to mlflow,tensorboard" in info["command"]
    assert info["started_at"] <= info["finished_at"] and info["started_at"].startswith("20")
    assert info["machine"]["cpu"] and info["machine"]["cpu_cores"] == os.cpu_count()
    assert info["machine"]["host"]
    assert info["git_dirty"] in (True, False, None)
    if info["git_commit"] is not None:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip() != ""
        assert info["git_dirty"] is dirty


def test_progress_log_lines_and_time_left_arithmetic(caplog):
    """Log mode: a line per interval with the model's steps, its time left and the run's, at the seconds per
    step measured so far (a fake clock: 1 s per step)."""
    from types import SimpleNamespace

    from jobtitles.train import progress

    now = [0.0]
    run = progress.RunProgress(["fold 1 of 2", "fold 2 of 2", "final model"], [10, 10, 20], "log",
                               clock=lambda: now[0])
    cb = run.callback(0)
    state = SimpleNamespace(is_world_process_zero=True, max_steps=10, global_step=0)
    cb.on_train_begin(None, state, None)
    caplog.set_level(logging.INFO, logger="jobtitles")
    for step in range(1, 11):
        now[0] = float(step) * (progress.LOG_EVERY_S / 4)  # four steps a minute
        state.global_step = step
        cb.on_log(None, state, None, logs={"loss": 0.5 / step})
        cb.on_step_end(None, state, None)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fold 1 of 2:")]
    assert lines[0] == "fold 1 of 2: step 4 of 10, 1m30s left here, about 9m00s of training left in the run, " \
                       "loss 0.1250"
    assert len(lines) == 2  # steps 4 and 8: one line a minute
    cb.on_train_end(None, state, None)
    assert run.steps == [0, 10, 20] and run.trained_steps == 10
    assert run.fold_line(1) == "; about 7m30s of training left in the run"
    run.skip(1)  # a resumed run's completed fold costs nothing
    assert run.fold_line(2) == "; about 5m00s of training left in the run"


def test_progress_mode_follows_the_terminal():
    from jobtitles.train.progress import choose_mode, duration

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert choose_mode("auto", Tty()) == "bar" and choose_mode("auto", io.StringIO()) == "log"
    assert choose_mode("none", Tty()) == "none"
    assert [duration(s) for s in (5, 65, 3600 * 2 + 240)] == ["5s", "1m05s", "2h04m"]


def run_train(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"HF_HUB_OFFLINE": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *argv], capture_output=True, text=True,
                          cwd=tmp_path, env={**base, **(env or {})}, timeout=300)


@pytest.mark.parametrize("argv,env,pattern", [
    (["--report_to", "wandb"], {}, r"^error: report_to: 'wandb' is not supported here; expected mlflow, tensorboard"),
    (["--report_to", "mlflow"], {"MLFLOW_TRACKING_URI": "file:./mlruns"},
     r"^error: report_to mlflow: the tracking store file:./mlruns does not open .*MLFLOW_TRACKING_URI"),
])
def test_tracking_settings_are_checked_before_any_data_is_read(tmp_path, argv, env, pattern):
    # the CSV does not exist: an error about it would mean the data was read first
    proc = run_train(tmp_path, "--train_file", "missing.csv", "--output_dir", "out", *argv, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    import re

    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlruns").exists()


def test_a_missing_integration_names_the_install_command(monkeypatch):
    import importlib.util

    from jobtitles import UserError
    from jobtitles.train import tracking

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(UserError, match=r"report_to: mlflow needs the mlflow package, which is not installed; "
                                        r"install it with: pip install \"jobtitles\[tracking\]\""):
        tracking.check_report_to(["tensorboard", "mlflow"])


def test_a_run_that_fails_before_its_first_fold_leaves_no_folder(tmp_path):
    (tmp_path / "bad.csv").write_text("Job;Column 1\nCEO;Chief Officer\n", encoding="utf-8")
    proc = run_train(tmp_path, "--train_file", "bad.csv", "--output_dir", "outputs/new")
    assert proc.returncode == 2 and "no 'Title' column" in proc.stderr
    assert not (tmp_path / "outputs" / "new").exists()
    # a folder that was there before is never removed, whatever it holds
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    proc = run_train(tmp_path, "--train_file", "bad.csv", "--output_dir", "mine")
    assert proc.returncode == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep"
