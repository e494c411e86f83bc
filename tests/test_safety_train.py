"""Issue: never lose a user's file, never report success on a run that did nothing (train.py side)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_train_argv, write_csv, sample_rows
from jobtitles.cli import train_main
from jobtitles.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [l for l in err.splitlines() if l.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err[-2000:]
    return errors[0]


def quick_argv(csv: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return tiny_train_argv(csv, model, out, "--num_train_epochs", "1", "--final_model", "false",
                           "--baseline", "false", "--report_train_metrics", "false", *extra)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_removes_only_the_runs_own_files(tiny_model_dir, tmp_path):
    out = tmp_path / "shared_folder"
    out.mkdir()
    csv = write_csv(out / "titles.csv", sample_rows())  # the user's CSV and notes live in the output folder
    (out / "notes.txt").write_text("my notes")
    (out / "sub").mkdir()
    (out / "sub" / "keep.md").write_text("keep me")
    user_files = {"titles.csv": csv.read_bytes(), "notes.txt": b"my notes", "sub/keep.md": b"keep me"}
    assert train_main(quick_argv(csv, tiny_model_dir, out)) == 0
    assert (out / "cv_results.json").is_file()
    assert train_main(quick_argv(csv, tiny_model_dir, out, "--decision_threshold", "0.4", "--overwrite", "true")) == 0
    after = snapshot(out)
    for name, content in user_files.items():
        assert after[name] == content, name
    assert (out / "cv_results.json").is_file()


@pytest.mark.parametrize("where,pattern", [
    ("/", r"is the file system root"),
    ("~", r"is your home folder"),
    (".", r"is the current folder"),
])
def test_special_folders_are_refused_as_output_dir(tiny_csv, tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                   where, pattern):
    monkeypatch.chdir(tmp_path)
    out = Path(where).expanduser()
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out)) == 2
    assert re.search(pattern, one_error(capsys))


def test_folder_with_foreign_run_like_files_is_refused(tiny_csv, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("a report the user wrote")
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out)) == 2
    assert re.search(r"holds \['report\.md'\] but no run_info\.json", one_error(capsys))
    assert (out / "report.md").read_text() == "a report the user wrote"


def test_rerun_of_a_finished_run_changes_nothing(tiny_run_dir, tiny_csv, tiny_model_dir, tmp_path, capsys, caplog):
    out = tmp_path / "done"
    shutil.copytree(tiny_run_dir, out)
    before = snapshot(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".jobtitles.lock"}
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out)) == 0
    after = snapshot(out)
    after.pop(".jobtitles.lock", None), before.pop(".jobtitles.lock", None)
    assert after == before
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    assert "finished run with the same inputs; nothing to do" in caplog.text
    assert "fold 1 of 2" not in caplog.text and "final model" not in caplog.text


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from jobtitles.train.run_folder import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_second_run_on_the_same_folder_is_refused_and_a_dead_holder_is_taken_over(tiny_csv, tiny_model_dir,
                                                                                   tmp_path, capsys):
    from jobtitles.train.run_folder import RunLock

    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out)) == 2
        assert re.search(rf"busy is in use by a training run \(pid {holder.pid} on ", one_error(capsys))
        assert not (out / "run_info.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert f"pid {holder.pid}" in (out / ".jobtitles.lock").read_text()  # left behind by a killed holder
    with RunLock(out):  # a stale lock is taken over
        assert f"pid {os.getpid()}" in (out / ".jobtitles.lock").read_text()


@pytest.mark.parametrize("argv,pattern", [
    (["--num_train_epochs", "0"], r"num_train_epochs must be greater than 0"),
    (["--num_train_epochs", "-2"], r"num_train_epochs must be greater than 0"),
    (["--per_device_train_batch_size", "0"], r"per_device_train_batch_size must be at least 1, found 0"),
    (["--learning_rate", "nan"], r"learning_rate must be a number greater than 0"),
    (["--learning_rate", "-1"], r"learning_rate must be a number greater than 0"),
    (["--seed", "-1"], r"seed must be between 0 and 2\*\*32 - 1, found -1"),
    (["--probe_c", "nan"], r"probe_c must be a number greater than 0, found nan"),
    (["--delimiter", ""], r"delimiter must be one character"),
    (["--delimiter", ";;"], r"delimiter must be one character .* found ';;'"),
    (["--max_train_rows", "-1"], r"max_train_rows must be a positive number of rows"),
    (["--eval_strategy", "steps"], r"eval_strategy: only 'no' is supported here, found 'steps'"),
    (["--max_length", "100"], r"max_length 100 is longer than the model's 64 positions"),
    (["--label_thresholds", '{"Nobody": 0.3}'], r"label_thresholds names unknown labels \['Nobody'\]"),
])
def test_bad_settings_stop_before_any_fold_trains(tiny_csv, tiny_model_dir, tmp_path, capsys, argv, pattern):
    out = tmp_path / "run"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out, *argv)) == 2
    assert re.search(pattern, one_error(capsys))
    assert not (out / "folds").exists()


def test_fewer_rows_than_folds(tiny_model_dir, tmp_path, capsys):
    csv = write_csv(tmp_path / "few.csv", [("CEO", ["Chief Officer"]), ("VP Sales", ["Vice President"])])
    assert train_main(tiny_train_argv(csv, tiny_model_dir, tmp_path / "run", "--n_splits", "3")) == 2
    assert re.search(r"few\.csv: 2 usable rows, fewer than n_splits=3", one_error(capsys))


def test_output_dir_that_is_a_file_or_under_a_file(tiny_csv, tiny_model_dir, tmp_path, capsys):
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, afile)) == 2
    assert re.search(r"a\.txt: is a file, expected a folder", one_error(capsys))
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, afile / "run")) == 2
    assert re.search(r"a\.txt is a file, not a folder", one_error(capsys))
    assert afile.read_text() == "x"


def test_full_disk_is_one_line(tiny_csv, tiny_model_dir, tmp_path, capsys, monkeypatch):
    import errno

    from jobtitles.core import io_utils

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "folds.json"))

    monkeypatch.setattr(io_utils.tempfile, "mkstemp", full)
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, tmp_path / "run")) == 2
    assert re.search(r"folds\.json: No space left on device; free some disk space", one_error(capsys))


def test_run_files_are_readable_by_the_group_under_umask_022(tiny_run_dir):
    old = os.umask(0o022)
    try:
        from jobtitles.core.io_utils import write_text

        write_text(tiny_run_dir.parent / "probe.txt", "x")
        assert (tiny_run_dir.parent / "probe.txt").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
    assert (tiny_run_dir / "report.md").stat().st_mode & 0o044 == 0o044


@pytest.mark.parametrize("content,pattern", [
    ("Title;Column 1\nCEO;A | B\nVP;V\n", r"row 2: label 'A \| B' contains '\|'"),
    ("Title;Column 1\nCEO;A|B\nVP;V\n", r"row 2: label 'A\|B' contains '\|'"),
    ('Title;Column 1\nCEO;"A\nB"\nVP;V\n', r"row 2: a quoted field runs over 2 lines"),
    ("Title;Column 1;Title\nCEO;A;x\nVP;V;y\n", r"the header has 2 'Title' columns"),
])
def test_bad_training_csv(tmp_path, content, pattern):
    from jobtitles.core.data import load_labeled_csv

    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=pattern):
        load_labeled_csv(path)


def test_stray_quote_stops_with_its_row_instead_of_swallowing_the_file(tmp_path):
    from jobtitles.core.data import load_labeled_csv, load_titles

    rows = [f"Title {i};Manager" for i in range(80)]
    rows[3] = '"Title 3;Manager'  # spreadsheet row 5
    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match=r"t\.csv: row 5: a quoted field runs over 77 lines"):
        load_labeled_csv(path)
    with pytest.raises(UserError, match=r"t\.csv: row 5: a quoted field runs over 77 lines"):
        load_titles(path)
    tail = tmp_path / "tail.csv"  # an unclosed quote on the last line, no line break after it
    tail.write_text('Title;Column 1;Column 2\nCEO;Chief Officer;\n"VP;Vice President;Owner')
    with pytest.raises(UserError, match=r"row 3: a field holds the delimiter ';' 2 times"):
        load_labeled_csv(tail)


def test_utf16_training_file_gets_the_right_hint(tmp_path):
    from jobtitles.core.data import load_labeled_csv

    path = tmp_path / "u.csv"
    path.write_text("Title;Column 1\nCEO;Chief Officer\nVP;Vice President\n", encoding="utf-16")
    with pytest.raises(UserError, match=r"UTF-16 byte-order mark but utf-8 is expected; set `encoding: utf-16`"):
        load_labeled_csv(path)
    assert load_labeled_csv(path, encoding="utf-16").titles == ["CEO", "VP"]
