"""Faults during training, export and prediction: kill -9 at random moments and a full disk (a real ENOSPC on a
small tmpfs). Every run folder, export and prediction file is either the earlier one or the complete new one;
a rerun of the same command finishes the work and leaves no temporary files behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import tiny_train_argv
from jobtitles.cli import predict_main, train_main

ROOT = Path(__file__).resolve().parents[1]
SEED = 24  # the kill moments are drawn from this seed: a failure reruns with the same moments
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}

# The only fields two uninterrupted runs of one command write differently (found by diffing two such runs):
# wall-clock seconds, and in model/baseline.skops (a zip) the member timestamps and the object ids skops names
# members by (see _canonical_zip). Everything else must match byte for byte.
VOLATILE_FIELDS = {
    "cv_results.json": ["timing.cv_seconds", "timing.fold_train_seconds", "timing.baseline_seconds",
                        "timing.final_train_seconds", "timing.total_seconds", "timing.parts",
                        "folds.*.train_seconds"],
    "result.json": ["train_seconds", "head_seconds", "score_seconds"],  # folds/fold_k/result.json
    "final_result.json": ["final_train_seconds"],
    # the checkout's HEAD (and whether it was dirty) at the run's start, not a result: a commit in the same
    # checkout during the test moves it; the clock: when the run started and finished, how long it took; and the
    # command line, which names the run's own folder
    "run_info.json": ["git_commit", "git_dirty", "started_at", "finished_at", "finishing_session_seconds",
                      "command"],
}
# Fields only a resumed run writes: each later session's command, machine and start (run_info.json "resumed").
SESSION_FIELDS = {"run_info.json": ["resumed"]}


def fast_argv(csv: Path, model: Path, out: Path) -> list[str]:
    """The real train.py command, as small as it goes: 3 folds, 10 steps per model, baseline and final model on
    (so the run folder holds every kind of file), one thread (predictable under a loaded machine)."""
    return tiny_train_argv(csv, model, out, "--n_splits", "3", "--num_train_epochs", "1", "--min_train_steps", "10",
                           "--cpu_threads", "1")


def temporaries(folder: Path) -> list[str]:
    """Names a killed or failed write could leave: our temporaries, partial outputs, lock files, half-moved
    model folders, the final model's trainer folder."""
    odd = re.compile(r"(^\..*\.tmp$)|(\.tmp\.)|(\.partial$)|(\.lock$)|(^\.model\.old$)|(^final_trainer$)")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if odd.search(p.name))


def _drop(data: Any, dotted: str) -> Any:
    """`data` with the field at `dotted` (`*` for every list item) replaced by a marker; the field must exist."""
    head, _, rest = dotted.partition(".")
    if head == "*":
        return [_drop(item, rest) for item in data]
    assert head in data, f"volatile field {dotted!r} is gone: update VOLATILE_FIELDS"
    return {**data, head: _drop(data[head], rest) if rest else "<wall clock>"}


def _canonical_zip(blob: bytes) -> dict[str, bytes]:
    """A zip (skops) by content: member timestamps ignored, and the object ids skops uses as member names and
    `__id__` values (memory addresses, different in every process) renumbered in order of appearance."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    ids: dict[str, str] = {}
    if "schema.json" in members:
        for found in re.findall(rb'"__id__": (\d+)', members["schema.json"]):
            ids.setdefault(found.decode(), f"id{len(ids)}")
    pattern = re.compile("|".join(sorted(ids, key=len, reverse=True))) if ids else None

    def rename(text: str) -> str:
        return pattern.sub(lambda m: ids[m.group(0)], text) if pattern else text

    return {rename(name): rename(data.decode()).encode() if name.endswith(".json") else data
            for name, data in members.items()}


def _training_args(path: Path) -> dict[str, Any]:
    """training_args.bin (a pickle the Trainer writes; ours, so loading it is safe) with the folders it names
    cut to their last part: the only fields that differ between the same run in two folders."""
    import torch

    args = torch.load(path, weights_only=False).to_dict()
    return {k: Path(v).name if k in ("output_dir", "logging_dir") and v else v for k, v in args.items()}


def _without_times(report: bytes) -> bytes:
    """report.md less its "Where the time went" section (wall seconds per part of the run)."""
    return re.sub(rb"(## Where the time went\n).*?(?=\n## |\Z)", rb"\1<wall clock>\n", report, flags=re.S)


def comparable(folder: Path, elsewhere: bool = False) -> dict[str, Any]:
    """Every file of a run folder by content, less the wall-clock fields (and, with `elsewhere`, less the
    folder's own path: a copy of a run resumed in another folder)."""
    out: dict[str, Any] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = path.read_bytes()
        fields = VOLATILE_FIELDS.get(path.name)
        if elsewhere and path.name == "training_args.bin":
            out[str(path.relative_to(folder))] = _training_args(path)
            continue
        if fields:
            data = json.loads(blob)
            for dotted in fields:
                data = _drop(data, dotted)
            for key in SESSION_FIELDS.get(path.name, []):
                data.pop(key, None)
            out[str(path.relative_to(folder))] = data
        elif path.name == "report.md":
            out[str(path.relative_to(folder))] = _without_times(blob)
        elif blob[:4] == b"PK\x03\x04":
            out[str(path.relative_to(folder))] = _canonical_zip(blob)
        else:
            out[str(path.relative_to(folder))] = blob
    return out


def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own process group: the kill reaches every child


def kill_at(proc: subprocess.Popen, when: float, begun: float) -> bool:
    """SIGKILL the process group `when` seconds after `begun`; False when it had already finished."""
    while proc.poll() is None and time.perf_counter() - begun < when:
        time.sleep(0.02)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def wait_for(lock: Path, pid: int, proc: subprocess.Popen | None = None) -> float:
    """The moment process `pid` holds the run folder's lock (its pid in the lock file: imports done, work
    begins), or `proc` ended."""
    while proc is None or proc.poll() is None:
        with contextlib.suppress(OSError):
            if lock.read_text().startswith(f"pid {pid} on "):
                break
        time.sleep(0.01)
    return time.perf_counter()


def test_kill_9_at_random_moments_then_rerun_gives_the_uninterrupted_run_folder(tiny_csv, tiny_model_dir, tmp_path):
    out = tmp_path / "run"  # both runs in the same folder: the command is the same to the last byte
    lock = out / ".jobtitles.lock"  # there from the start of a run's work to its end
    argv = fast_argv(tiny_csv, tiny_model_dir, out)
    cmd = [sys.executable, str(ROOT / "train.py"), *argv]
    locked = []  # when this process took the lock: the uninterrupted run's timeline starts there
    watcher = threading.Thread(target=lambda: locked.append(wait_for(lock, os.getpid())), daemon=True)
    watcher.start()
    assert train_main(argv) == 0  # in this process: the same command, without paying its imports again
    work = time.perf_counter() - locked[0]
    reference = tmp_path / "reference"
    out.rename(reference)

    # 3 moments on the uninterrupted run's timeline (from its lock to its end). Each attempt is killed after
    # the time from the previous moment to its own, counted from when it takes the lock, so the kills land
    # further on each time, in every phase: a fold's training, its files, the final model, the report.
    rng = random.Random(SEED)
    moments = sorted(rng.uniform(0, work) for _ in range(3))
    killed = []
    for since, until in zip([0.0, *moments], moments):
        proc = start(cmd, tmp_path)
        if not kill_at(proc, until - since, wait_for(lock, proc.pid, proc)):
            assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
            break
        killed.append(sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()))
    assert killed, f"no kill landed before the run ended (moments {moments}, reference {work:.1f} s)"
    proc = start(cmd, tmp_path)
    assert proc.wait() == 0, proc.stderr.read().decode()[-3000:]

    assert temporaries(out) == [] and temporaries(reference) == []
    assert comparable(out) == comparable(reference), f"killed at {moments[:len(killed)]} s with files {killed}"


@pytest.fixture()
def run_copy(tiny_run_dir, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir, out)
    return out


END_FILES = ["cv_results.json", "report.md", "oof_predictions.csv", "label_issues.csv", "plots"]


@pytest.mark.parametrize("stage", ["model saved", "report written", "fold 0 done"])
def test_rerun_after_a_kill_at_each_stage_matches_the_uninterrupted_run(run_copy, tiny_run_dir, tiny_csv,
                                                                       tiny_model_dir, stage):
    """The states a kill leaves between the run's steps, each resumed: the same folder as one run."""
    gone = {"model saved": END_FILES, "report written": ["cv_results.json"],
            "fold 0 done": END_FILES + ["model", "folds/fold_1"]}[stage]
    for name in gone:
        path = run_copy / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, run_copy)) == 0
    assert temporaries(run_copy) == []
    assert comparable(run_copy, elsewhere=True) == comparable(tiny_run_dir, elsewhere=True)


@pytest.mark.parametrize("dies_at", ["oof_predictions.csv", "label_issues.csv", "per_label_f1.png", "report.md",
                                     "cv_results.json"])
def test_a_run_that_dies_while_writing_its_last_files_is_redone_by_the_rerun(run_copy, tiny_run_dir, tiny_csv,
                                                                             tiny_model_dir, monkeypatch, dies_at):
    """cv_results.json (complete: a rerun does nothing) must be the last file: a run that dies before it, at
    any of the end files, leaves a folder the rerun finishes."""
    from jobtitles.core import io_utils

    for name in END_FILES:
        path = run_copy / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    replace = os.replace

    def dies(src, dst):
        if Path(dst).name == dies_at:
            raise KeyboardInterrupt  # the process ends here, as with kill -9 (but the test goes on)
        replace(src, dst)

    argv = tiny_train_argv(tiny_csv, tiny_model_dir, run_copy)
    monkeypatch.setattr(io_utils.os, "replace", dies)
    assert train_main(argv) == 130
    monkeypatch.setattr(io_utils.os, "replace", replace)
    assert train_main(argv) == 0
    assert temporaries(run_copy) == []
    assert comparable(run_copy, elsewhere=True) == comparable(tiny_run_dir, elsewhere=True)


def test_temporaries_of_a_killed_run_are_removed_by_the_rerun_and_the_users_files_kept(run_copy, tiny_run_dir,
                                                                                      tiny_csv, tiny_model_dir):
    (run_copy / "cv_results.json").unlink()
    planted = [".cv_results.json.k3j9x0ab.tmp", ".report.md.a1b2c3d4.tmp", ".model.tmp/model.safetensors",
               ".model.old/config.json", "plots/.per_label_f1.png.zz11yy22.tmp",
               "folds/fold_0/.result.json.q1w2e3r4.tmp", "folds/.folds.x.tmp", "model/.README.md.abcd1234.tmp",
               ".jobtitles.lock"]
    for name in planted:
        (run_copy / name).parent.mkdir(parents=True, exist_ok=True)
        (run_copy / name).write_text("half written")
    users = {".my_notes.tmp": "the user's", "notes.partial": "the user's too"}
    for name, text in users.items():
        (run_copy / name).write_text(text)
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, run_copy)) == 0
    for name, text in users.items():
        assert (run_copy / name).read_text() == text
        (run_copy / name).unlink()
    assert temporaries(run_copy) == []
    assert comparable(run_copy, elsewhere=True) == comparable(tiny_run_dir, elsewhere=True)


@pytest.fixture(scope="module")
def model(tiny_run_dir) -> Path:
    return tiny_run_dir / "model"


def test_kill_9_during_predict_keeps_the_earlier_output_and_the_rerun_completes(model, tmp_path):
    src = tmp_path / "titles.txt"
    rng = random.Random(SEED)
    words = ["Senior", "VP", "Sales", "Director", "Chief", "Officer", "Manager", "of", "IT", "EMEA", "Engineer"]
    src.write_text("\n".join(" ".join(rng.choices(words, k=4)) for _ in range(3_000)) + "\n", encoding="utf-8")
    expected = tmp_path / "expected.csv"
    args = ["--model", str(model), "--input", str(src), "--chunk_size", "100"]
    assert predict_main([*args, "--output", str(expected)]) == 0
    out = tmp_path / "p.csv"
    out.write_text("earlier;predictions\n")
    cmd = [sys.executable, str(ROOT / "predict.py"), *args, "--output", str(out)]

    proc = start(cmd, tmp_path)
    partial = tmp_path / "p.csv.partial"
    written = rng.uniform(1_000, 100_000)  # of about 200 kB: killed somewhere in the stream
    while proc.poll() is None and (not partial.exists() or partial.stat().st_size < written):
        time.sleep(0.01)
    assert kill_at(proc, 0, time.perf_counter()), "predict.py finished before it was killed: give it more titles"
    assert out.read_text() == "earlier;predictions\n"
    assert 1 < len(partial.read_text().splitlines()) < 3_001  # what it had written: named .partial, not p.csv

    proc = start(cmd, tmp_path)
    assert proc.wait() == 0, proc.stderr.read().decode()[-3000:]
    assert out.read_bytes() == expected.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected.csv", "p.csv", "titles.txt"]


@pytest.fixture(scope="module")
def export_reference(model, tmp_path_factory) -> dict[str, bytes]:
    """The bytes one uninterrupted export of the tiny model writes."""
    from jobtitles.predict.export import main as export_main

    copy = tmp_path_factory.mktemp("export") / "model"
    shutil.copytree(model, copy)
    assert export_main(["--model", str(copy), "--int8", "--no_parity"]) == 0
    return {p.name: p.read_bytes() for p in (copy / "onnx").iterdir()}


EARLIER = {"model.onnx": b"the earlier fp32 export", "model_int8.onnx": b"the earlier int8 export"}


def earlier_export(model: Path, folder: Path) -> Path:
    """A copy of the model folder whose onnx/ holds an earlier export (marker bytes: any change shows)."""
    copy = folder / "model"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns("onnx"))
    (copy / "onnx").mkdir()
    for name, data in EARLIER.items():
        (copy / "onnx" / name).write_bytes(data)
    return copy


def onnx_files(copy: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (copy / "onnx").iterdir()}


def test_kill_9_during_export_keeps_the_earlier_export_and_the_rerun_completes(model, export_reference, tmp_path):
    copy = earlier_export(model, tmp_path)
    cmd = [sys.executable, "-m", "jobtitles.predict.export", "--model", str(copy), "--int8", "--no_parity"]
    proc = start(cmd, tmp_path)
    # killed while the new export is being written: its temporary files exist, the earlier files are in place
    while proc.poll() is None and not any(p.name.endswith(".tmp") for p in (copy / "onnx").iterdir()):
        time.sleep(0.005)
    delay = random.Random(SEED).uniform(0, 0.5)  # into the fp32 write or the int8 quantization
    assert kill_at(proc, delay, time.perf_counter()), "the export finished before it was killed"
    assert {k: v for k, v in onnx_files(copy).items() if k in EARLIER} == EARLIER

    proc = start(cmd, tmp_path)
    assert proc.wait() == 0, proc.stderr.read().decode()[-3000:]
    assert onnx_files(copy) == export_reference  # complete, and no temporary file left in onnx/


# ---- a full disk: a real ENOSPC from a small tmpfs --------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (root, or passwordless sudo); unmounted whatever happens."""
    where.mkdir(parents=True, exist_ok=True)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    res = subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a real full disk: {res.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run([*sudo, "umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run([*sudo, "umount", "-l", str(where)], check=True)  # a file still open: detach it


def fill(disk: Path, leave: int) -> None:
    """Fill `disk` up to `leave` free bytes."""
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(shutil.disk_usage(disk).free - leave, 0))


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


FULL = r": No space left on device; free some disk space or choose another output folder$"


@pytest.mark.parametrize("leave,failing", [
    (0, r"\.jobtitles\.lock"),  # nothing can be written: refused at the lock, before any work
    (60 << 10, r"\.model\.tmp"),  # the small files fit; the final model does not
])
def test_full_disk_during_training_is_one_line_and_keeps_the_finished_folds(tiny_run_dir, tiny_csv, tiny_model_dir,
                                                                           tmp_path, capsys, leave, failing):
    with small_disk(tmp_path / "disk", "16m") as disk:
        out = disk / "run"
        shutil.copytree(tiny_run_dir, out, ignore=shutil.ignore_patterns(*END_FILES, "model", "final_result.json"))
        before = snapshot(out)  # run_info.json, folds.json, dropped_rows.csv, the finished folds
        fill(disk, leave)
        assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out)) == 2
        line = one_error(capsys)
        assert re.search(rf"^error: {re.escape(str(out))}/{failing}{FULL}", line), line
        after = snapshot(out)
        assert {k: after.get(k) for k in before} == before
        assert temporaries(out) == [] and not (out / "model").exists()


@pytest.mark.parametrize("failing", ["model.onnx", "model_int8.onnx"])
def test_full_disk_during_export_is_one_line_and_keeps_the_earlier_export(model, export_reference, tmp_path, capsys,
                                                                          failing):
    from jobtitles.predict.export import main as export_main

    fp32, int8 = len(export_reference["model.onnx"]), len(export_reference["model_int8.onnx"])
    leave = fp32 // 2 if failing == "model.onnx" else fp32 + int8 // 2  # room for half the fp32 / half the int8
    with small_disk(tmp_path / "disk", "16m") as disk:
        copy = earlier_export(model, disk)
        fill(disk, leave)
        assert export_main(["--model", str(copy), "--int8", "--no_parity"]) == 2
        line = one_error(capsys)
        assert re.search(rf"^error: {re.escape(str(copy / 'onnx'))}/{failing}{FULL}", line), line
        assert onnx_files(copy) == EARLIER  # both earlier files, byte for byte, and no temporary file


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_full_disk_during_predict_is_one_line_and_keeps_the_earlier_predictions(model, tmp_path, capsys, suffix):
    src = tmp_path / "titles.txt"
    src.write_text("VP of Sales\nChief Executive Officer\n" * 2000, encoding="utf-8")
    with small_disk(tmp_path / "disk", "64k") as disk:
        out = disk / f"p.{suffix}"
        out.write_text("earlier predictions\n")
        fill(disk, 8 << 10)
        assert predict_main(["--model", str(model), "--input", str(src), "--output", str(out),
                             "--chunk_size", "100"]) == 2
        line = one_error(capsys)
        assert re.search(rf"^error: {re.escape(str(out))}{FULL}", line), line
        assert out.read_text() == "earlier predictions\n"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", f"p.{suffix}"]


def test_full_disk_on_standard_output_is_one_line(model, tmp_path):
    """`predict.py ... > shown.txt` on a full disk: one line naming standard output, exit 2, not Python's
    'Exception ignored' at exit or a line naming 'a file'."""
    src = tmp_path / "titles.txt"
    src.write_text("VP of Sales\nChief Executive Officer\n" * 2000, encoding="utf-8")
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk, 8 << 10)
        with open(disk / "shown.txt", "w") as shown:
            res = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--model", str(model), "--input", str(src)],
                                 stdout=shown, stderr=subprocess.PIPE, env=ENV, text=True)
    assert res.returncode == 2, res.stderr[-3000:]
    assert [line for line in res.stderr.splitlines() if line.startswith("error: ")] == [
        "error: <standard output>: No space left on device; free some disk space or choose another output folder"]
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr[-3000:]
