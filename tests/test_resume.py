"""A run killed between folds resumes from the last completed fold and ends with the same results."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_train_argv
from jobtitles.cli import train_main
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import read_json

ROOT = Path(__file__).resolve().parents[1]


def comparable(res: dict) -> dict:
    """cv_results without wall-clock figures."""
    res = dict(res)
    res.pop("timing")
    res["folds"] = [{k: v for k, v in f.items() if k != "train_seconds"} for f in res["folds"]]
    return res


def test_killed_run_resumes_to_identical_results(tiny_csv, tiny_model_dir, tmp_path, caplog):
    reference = tmp_path / "reference"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, reference, "--n_splits", "3")) == 0

    resumed = tmp_path / "resumed"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, resumed, "--n_splits", "3")
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *argv], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = resumed / "folds" / "fold_0" / "result.json"
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run dies after fold 0, before the report
    proc.wait()
    assert marker.exists()
    assert not (resumed / "cv_results.json").exists()
    assert not (resumed / "folds" / "fold_2" / "result.json").exists()

    caplog.clear()
    assert train_main(argv) == 0
    assert "fold 1 of 3: complete" in caplog.text and "skipped (resume)" in caplog.text
    assert comparable(read_json(resumed / "cv_results.json")) == comparable(read_json(reference / "cv_results.json"))


def test_resume_refuses_other_inputs(tiny_csv, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--max_steps", "1", "--final_model", "false",
                           "--baseline", "false")
    assert train_main(argv) == 0
    with pytest.raises(UserError, match=r"holds a run with other inputs \(project.decision_threshold: 0.5 -> 0.4\)"):
        from jobtitles.train.config import parse_config
        from jobtitles.train.cv import cross_validate

        cross_validate(*parse_config(argv + ["--decision_threshold", "0.4"]))
    changed = tmp_path / "changed.csv"
    shutil.copy(tiny_csv, changed)
    with changed.open("a") as fh:
        fh.write("Chief Revenue Officer;Chief Officer;;\n")
    argv_changed = [a if a != str(tiny_csv) else str(changed) for a in argv]
    assert train_main(argv_changed) == 2  # CLI: one line, exit 2
    assert train_main(argv_changed + ["--overwrite"]) == 0
    assert read_json(out / "cv_results.json")["n_rows"] == 86


def test_a_setting_added_later_does_not_block_resuming_an_older_run_folder():
    """A folder of an earlier version has no key for a setting added since; at the value that trains as that
    version did it still resumes, at any other value it is another input."""
    from jobtitles.train.run_folder import ADDED_SETTINGS, _changes

    key = "project.repeat_factor_threshold"
    old = {"csv_sha256": "x", "settings": {"project.seed": 42}}
    assert _changes(old, {"csv_sha256": "x", "settings": {"project.seed": 42, key: ADDED_SETTINGS[key]}}) == []
    assert _changes(old, {"csv_sha256": "x", "settings": {"project.seed": 42, key: 0.05}}) == [f"{key}: 0.0 -> 0.05"]
