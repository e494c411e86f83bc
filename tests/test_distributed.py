"""Two CPU processes through `accelerate launch` (gloo): each fold trains data-parallel, only the main process
writes, and the results match a single-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


from conftest import tiny_train_argv
from jobtitles.cli import train_main
from jobtitles.core.io_utils import read_json

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_match_one(tiny_csv, tiny_model_dir, tmp_path):
    # 9 optimizer steps (no step budget): the two runs shard the random sampler differently, and after many
    # steps their models part ways; the test checks rows, folds, gathering, step counts and files
    common = ["--num_train_epochs", "3", "--n_splits", "2", "--logging_steps", "1", "--min_train_steps", "0"]
    single = tmp_path / "single"
    # one process, batch 16 == two processes x batch 8: the same global batch
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, single, *common)) == 0
    double = tmp_path / "double"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, double, *common, "--per_device_train_batch_size", "8",
                           "--use_cpu", "true")
    accelerate = str(Path(sys.executable).parent / "accelerate")
    proc = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "train.py"), *argv],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + "\n" + "\n".join(l for l in proc.stderr.splitlines() if "rank0" in l or "Error" in l)[-3000:]
    assert "2 processes" in proc.stderr  # the Trainer really ran data-parallel
    one, two = read_json(single / "cv_results.json"), read_json(double / "cv_results.json")
    # the same folds, rows and files; everything computed on the main process alone is identical
    assert read_json(single / "folds.json") == read_json(double / "folds.json")
    assert one["n_rows"] == two["n_rows"] and one["labels"] == two["labels"]
    assert one["summary"]["baseline"] == two["summary"]["baseline"]
    # every row scored exactly once (no duplicates from uneven shards)
    assert sum(1 for _ in open(double / "oof_predictions.csv")) == one["n_rows"] + 1
    # the transformer figures agree within the stated tolerance (different reduction order and sampling)
    for metric in ("micro_f1", "subset_accuracy"):
        assert abs(one["summary"]["model"][metric]["mean"] - two["summary"]["model"][metric]["mean"]) <= 0.05
    # same number of optimizer steps: two processes split each global batch
    assert [f["loss_history"][-1]["step"] for f in one["folds"]] == [f["loss_history"][-1]["step"] for f in two["folds"]]
    assert (double / "model" / "model.safetensors").is_file()
    assert not list(double.rglob("*.tmp"))
