"""The backend predict.py and Spark use unless told: the folder's int8 export when it passed its parity check and
is still the file that did (onnx/parity.json), else PyTorch with one line saying how to get the faster one."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def exported(tiny_run_dir, tmp_path_factory) -> tuple[Path, bool]:
    """A copy of the tiny run's model with its int8 export (parity checked on the run's CV rows)."""
    from jobtitles.predict import export

    model = tmp_path_factory.mktemp("exported") / "run" / "model"
    shutil.copytree(tiny_run_dir / "model", model)
    shutil.copy(tiny_run_dir / "oof_predictions.csv", model.parent / "oof_predictions.csv")
    report = export.export_model(model, int8=True, say=lambda line: None)
    return model, report.checks[-1].ok


def predict_stderr(model: Path, *extra: str) -> str:
    from jobtitles.predict.predict_cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        assert main(["--model", str(model), *extra, "CEO"]) == 0
    return err.getvalue()


def test_without_a_checked_export_torch_and_the_command_to_get_one(tiny_run_dir, tmp_path):
    from jobtitles.predict.backends import resolve_backend

    model = tmp_path / "model"
    shutil.copytree(tiny_run_dir / "model", model)
    backend, why = resolve_backend(model, "auto")
    assert backend == "torch"
    assert why.endswith(f"python -m jobtitles.export --model {model} --int8 (used by default afterwards)")
    assert f"backend torch: no int8 export that passed its parity check; the faster backend: python -m jobtitles.export " \
           f"--model {model} --int8" in predict_stderr(model)
    assert "backend" not in predict_stderr(model, "--backend", "torch")  # asked for: nothing to say


def test_a_passed_int8_export_is_the_default_and_a_changed_file_is_not_trusted(exported, tmp_path):
    from jobtitles.core.model_folder import ONNX_FILES, PARITY_FILE
    from jobtitles.predict.backends import resolve_backend
    from jobtitles.predict.spark import title_labeler

    model, passed = exported
    record = json.loads((model / PARITY_FILE).read_text())
    assert set(record["checks"]) == {"onnx", "onnx-int8"} and record["checks"]["onnx-int8"]["ok"] is passed
    if not passed:  # the tiny random model may miss the target: make the record say it passed, as a real one does
        record["checks"]["onnx-int8"]["ok"] = True
        (model / PARITY_FILE).write_text(json.dumps(record))
    assert resolve_backend(model, "auto")[0] == "onnx-int8"
    assert "backend onnx-int8: onnx/model_int8.onnx passed its parity check" in predict_stderr(model)
    assert title_labeler(model).backend == "onnx-int8"  # Spark: chosen once on the driver
    assert resolve_backend(model, "torch") == ("torch", "asked for with --backend")
    copy = tmp_path / "changed"
    shutil.copytree(model, copy)
    with open(copy / ONNX_FILES["onnx-int8"], "ab") as fh:  # another file than the one checked
        fh.write(b"\0")
    assert resolve_backend(copy, "auto")[0] == "torch"
    for bad in ("not json", json.dumps({"checks": {"onnx-int8": {"ok": False}}, "sha256": record["sha256"]}),
                json.dumps({"checks": []}), json.dumps([1, 2])):
        (model / PARITY_FILE).write_text(bad)
        assert resolve_backend(model, "auto")[0] == "torch", bad
