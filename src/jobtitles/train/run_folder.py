"""What a run folder records about its inputs, and whether a rerun may resume from it."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from transformers import TrainingArguments

from jobtitles.core.errors import UserError
from jobtitles.core.log import logger
from jobtitles.core.io_utils import disk_errors, is_temporary, read_json, remove_temporaries, sha256_file, write_json

if TYPE_CHECKING:
    from jobtitles.train.project_args import ProjectArgs

RUN_INFO = "run_info.json"
LOCK_NAME = ".jobtitles.lock"
# Every name a run writes in its folder; --overwrite removes these and nothing else.
RUN_FILES = {RUN_INFO, LOCK_NAME, "cv_results.json", "oof_predictions.csv", "folds.json", "dropped_rows.csv",
             "final_result.json",
             "report.md", "label_issues.csv", "plots", "folds", "model", "final_trainer", ".model.tmp",
             ".model.old", "train.log", "tensorboard", "plan.json", "calibration"}
# Settings that do not change results: a rerun may differ in these and still resume.
VOLATILE = {"overwrite", "output_dir", "logging_dir", "disable_tqdm", "logging_steps", "logging_strategy",
            "report_to", "push_to_hub", "hub_model_id", "hub_token", "hub_private_repo", "local_rank",
            "dataloader_num_workers", "log_level", "run_name", "label_issues", "progress"}
PACKAGES = ("jobtitles", "torch", "transformers", "datasets", "accelerate", "scikit-learn",
            "iterative-stratification", "huggingface_hub", "tokenizers", "numpy")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


def git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def git_dirty() -> bool | None:
    """True when the project's checkout has uncommitted changes to tracked files (the commit alone then does not
    reproduce the run); None outside a git checkout."""
    try:
        res = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(res.stdout.strip()) if res.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC 9B14"): from /proc/cpuinfo on Linux, else what platform says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """Where a run ran, for run_info.json: host, CPU, cores, GPU."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "gpu": gpu,
            "platform": platform.platform()}


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def resolved_config(project: "ProjectArgs", training: TrainingArguments) -> dict[str, Any]:
    train = {k: v for k, v in training.to_dict().items() if not k.startswith("_")}
    return {"project": project.as_dict(), "training": train}


def fingerprint(config: dict[str, Any], csv_path: Path) -> dict[str, Any]:
    settings = {f"{section}.{k}": v for section, values in config.items() for k, v in values.items()
                if k not in VOLATILE}
    # JSON round trip so a fresh fingerprint compares equal to one read back from run_info.json
    return json.loads(json.dumps({"csv_sha256": sha256_file(csv_path), "settings": settings}, default=str))


def is_finished(run_dir: Path) -> bool:
    """The run in this folder finished (cv_results.json says complete): a rerun of its command changes nothing."""
    path = run_dir / "cv_results.json"
    return path.is_file() and bool(read_json(path).get("complete"))


def check_output_dir(run_dir: Path) -> None:
    """Refuse an output folder that cannot hold a run, before any data is read: the file system root, the
    home or current folder (a run folder's files would mix with the user's own), a file, a folder that holds
    files named like a run's that no run wrote, or a folder that cannot be written."""
    resolved = run_dir.expanduser().resolve()
    for special, name in ((Path(resolved.anchor), "the file system root"), (Path.home().resolve(), "your home folder"),
                          (Path.cwd().resolve(), "the current folder")):
        if resolved == special:
            raise UserError(f"output_dir {run_dir}: is {name}; give a folder of its own, e.g. outputs/<run>")
    if resolved.exists() and not resolved.is_dir():
        raise UserError(f"output_dir {run_dir}: is a file, expected a folder; give another output_dir")
    for parent in resolved.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"output_dir {run_dir}: {parent} is a file, not a folder; give another output_dir")
    if resolved.is_dir() and not (resolved / RUN_INFO).is_file():
        ours = sorted(p.name for p in resolved.iterdir() if p.name in RUN_FILES and p.name != LOCK_NAME)
        if ours:
            raise UserError(f"output_dir {run_dir}: holds {ours} but no {RUN_INFO}, so no run of this project wrote "
                            "them; they would be overwritten: give another output_dir")
    resolved.mkdir(parents=True, exist_ok=True)
    probe = resolved / f".write-test-{os.getpid()}"
    probe.write_bytes(b"")  # OSError (read-only, full, no permission) becomes one line in cli_entry
    probe.unlink()


def remove_run_files(run_dir: Path) -> list[str]:
    """Delete what a run wrote (RUN_FILES and the run's temporary files), never anything else in the folder."""
    removed = []
    for path in sorted(run_dir.iterdir()):
        if path.name in RUN_FILES or is_temporary(path.name):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path.name)
    return removed


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """The temporary files of an earlier run of this folder killed mid-write (kill -9, power loss): they are
    never read, but would stay forever. The run's own subfolders are cleaned wholly; the top level only of
    temporaries named after a run's files (the folder may hold the user's own files)."""
    stale = [p for p in run_dir.iterdir() if is_temporary(p.name) and _names_run_file(p.name)] \
        if run_dir.is_dir() else []
    for path in stale:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
    if (run_dir / "model").is_dir() and (run_dir / ".model.old").is_dir():
        shutil.rmtree(run_dir / ".model.old")  # killed after the new model/ was in place, before the old went
        stale.append(run_dir / ".model.old")
    for sub in (run_dir / "plots", run_dir / "model", run_dir / "folds", *(run_dir / "folds").glob("fold_*")):
        stale += remove_temporaries(sub)
    return stale


def _names_run_file(name: str) -> bool:
    """`.model.tmp`, or `.<a run file's name>.<random>.tmp` (io_utils.atomic_path)."""
    return name in RUN_FILES or any(name.startswith(f".{run_file}.") for run_file in RUN_FILES)


SESSION_KEYS = ("command", "started_at", "machine", "git_commit", "git_dirty")


def record_finish(run_dir: Path, seconds: float) -> None:
    """run_info.json gains the end time and the wall time of the session that finished the run."""
    path = run_dir / RUN_INFO
    write_json(path, {**read_json(path), "finished_at": now_iso(), "finishing_session_seconds": round(seconds, 1)})


def prepare_run_dir(run_dir: Path, info: dict[str, Any], overwrite: bool,
                    previous: Callable[[Path, dict[str, Any]], dict[str, Any] | None] | None = None) -> bool:
    """Check the run folder against an earlier run's inputs. Returns True when resuming a matching run.
    `previous(run_dir, earlier run_info)`: called before --overwrite removes an earlier run's files; what it
    returns (not None) is recorded as run_info.json `previous_run`."""
    path = run_dir / RUN_INFO
    if path.is_file():
        old = read_json(path)
        changes = _changes(old.get("fingerprint", {}), info["fingerprint"])
        if not changes:
            remove_stale_temporaries(run_dir)
            if not old.get("finished_at"):  # each session of a resumed run: its command, machine and start
                session = {k: info.get(k) for k in SESSION_KEYS}
                write_json(path, {**old, "resumed": [*old.get("resumed", []), session]})
            return True
        if not overwrite:
            raise UserError(
                f"{run_dir} holds a run with other inputs ({'; '.join(changes[:5])}); "
                "use another output_dir, or pass --overwrite to start over"
            )
        found = previous(run_dir, old) if previous is not None else None
        if found is not None:
            info = {**info, "previous_run": found}
        removed = remove_run_files(run_dir)
        logger.info(f"--overwrite: removed the earlier run's files from {run_dir}: {', '.join(removed)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)  # a run killed before it wrote run_info.json
    write_json(path, info)
    return False


class RunLock:
    """One training process per run folder. The kernel drops an flock when its holder dies, so a lock left by
    a killed run is taken over without asking; the holder's pid is written into the file for the message, and
    the holder deletes the file when it is done (a finished run leaves no lock file).
    (fcntl rather than the filelock package: the message needs the holder's pid, which filelock does not keep.)"""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self.fh = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run per folder is then the user's to keep
            return self
        while self.fh is None:
            self.fh = self._take(fcntl)
        try:
            with disk_errors(self.path):  # a full disk fails here, before any work, naming the lock file
                self.fh.seek(0)
                self.fh.truncate()
                self.fh.write(f"pid {os.getpid()} on {platform.node()}\n")
                self.fh.flush()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _take(self, fcntl):
        """The locked file, or None when its holder deleted it between our open and our lock (try again)."""
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"{self.path.parent} is in use by a training run ({holder}); wait for it to finish, "
                            "stop it, or give another output_dir") from None
        try:
            same = os.path.samestat(os.fstat(fh.fileno()), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:
            fh.close()
        return fh if same else None

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.path.unlink(missing_ok=True)  # while still locked: a waiting run then opens a new file
            with contextlib.suppress(OSError):  # the pid line that a full disk could not take
                self.fh.close()  # closing releases the flock
            self.fh = None


# Settings added after run folders of earlier versions existed, with the value that trains as those runs did: a
# folder whose fingerprint lacks the key was run with that value, so it still resumes.
ADDED_SETTINGS: dict[str, Any] = {"project.repeat_factor_threshold": 0.0}


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if old.get("csv_sha256") != new.get("csv_sha256"):
        out.append("the input CSV changed (SHA-256 differs)")
    a, b = old.get("settings", {}), new.get("settings", {})
    a = {**{k: v for k, v in ADDED_SETTINGS.items() if k in b}, **a}
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out
