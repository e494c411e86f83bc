"""What a run folder records about its inputs, and whether a rerun may resume from it."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from jobtitles.errors import UserError
from jobtitles.io_utils import read_json, sha256_file, write_json

RUN_INFO = "run_info.json"
# Settings that do not change results: a rerun may differ in these and still resume.
VOLATILE = {"overwrite", "output_dir", "logging_dir", "disable_tqdm", "logging_steps", "logging_strategy",
            "report_to", "push_to_hub", "hub_model_id", "hub_token", "hub_private_repo", "local_rank",
            "dataloader_num_workers", "log_level", "run_name"}
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


def prepare_run_dir(run_dir: Path, info: dict[str, Any], overwrite: bool) -> bool:
    """Create or check the run folder. Returns True when resuming a matching earlier run."""
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
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, info)
    return False


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if old.get("csv_sha256") != new.get("csv_sha256"):
        out.append("the input CSV changed (SHA-256 differs)")
    a, b = old.get("settings", {}), new.get("settings", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out
