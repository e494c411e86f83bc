"""What a run folder records about its inputs, and whether a rerun may resume from it."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from jobtitles.errors import UserError
from jobtitles.log import logger
from jobtitles.io_utils import read_json, sha256_file, write_json

RUN_INFO = "run_info.json"
LOCK_NAME = ".jobtitles.lock"
# Every name a run writes in its folder; --overwrite removes these and nothing else.
RUN_FILES = {RUN_INFO, LOCK_NAME, "cv_results.json", "oof_predictions.csv", "folds.json", "dropped_rows.csv",
             "report.md", "label_issues.csv", "plots", "folds", "model", "final_trainer", ".model.tmp",
             ".model.old", "train.log"}
# Settings that do not change results: a rerun may differ in these and still resume.
VOLATILE = {"overwrite", "output_dir", "logging_dir", "disable_tqdm", "logging_steps", "logging_strategy",
            "report_to", "push_to_hub", "hub_model_id", "hub_token", "hub_private_repo", "local_rank",
            "dataloader_num_workers", "log_level", "run_name", "label_issues"}
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


def resolved_config(project: Any, training: TrainingArguments) -> dict[str, Any]:
    train = {k: v for k, v in training.to_dict().items() if not k.startswith("_")}
    return {"project": dataclasses.asdict(project), "training": train}


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
        temp = path.name.startswith(".") and path.name.endswith(".tmp")
        if path.name in RUN_FILES or temp:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path.name)
    return removed


def prepare_run_dir(run_dir: Path, info: dict[str, Any], overwrite: bool) -> bool:
    """Check the run folder against an earlier run's inputs. Returns True when resuming a matching run."""
    path = run_dir / RUN_INFO
    if path.is_file():
        old = read_json(path)
        changes = _changes(old.get("fingerprint", {}), info["fingerprint"])
        if not changes:
            return True
        if not overwrite:
            raise UserError(
                f"{run_dir} holds a run with other inputs ({'; '.join(changes[:5])}); "
                "use another output_dir, or pass --overwrite to start over"
            )
        removed = remove_run_files(run_dir)
        logger.info(f"--overwrite: removed the earlier run's files from {run_dir}: {', '.join(removed)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, info)
    return False


class RunLock:
    """One training process per run folder. The kernel drops an flock when its holder dies, so a lock left by
    a killed run is taken over without asking; the holder's pid is written into the file for the message.
    (fcntl rather than the filelock package: the message needs the holder's pid, which filelock does not keep.)"""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self.fh = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run per folder is then the user's to keep
            return self
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"{self.path.parent} is in use by a training run ({holder}); wait for it to finish, "
                            "stop it, or give another output_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {platform.node()}\n")
        fh.flush()
        self.fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.truncate(0)
            self.fh.close()  # closing releases the flock


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if old.get("csv_sha256") != new.get("csv_sha256"):
        out.append("the input CSV changed (SHA-256 differs)")
    a, b = old.get("settings", {}), new.get("settings", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out
