"""Which backend serves a model folder: the one asked for, or the fastest available (ONNX int8, exported into
the folder on first use with the project's export and parity check; torch when that is not possible)."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobtitles.core.errors import UserError
from jobtitles.core.model_folder import ONNX_FILES

logger = logging.getLogger("jobtitles.serve")


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    reason: str  # one line for the log and /info


def _onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _writable(folder: Path) -> bool:
    """Can files be created here? Tried, not os.access: that says yes to root on a read-only mount's folder."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _export_int8(model_dir: Path) -> tuple[int, str]:
    """Run `python -m jobtitles.export --model DIR --int8` in-process (export, parity check, int8 fallback);
    returns its exit code and its last output line."""
    from jobtitles.core.log import setup_logging
    from jobtitles.predict.export import main as export_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = export_main(["--model", str(model_dir), "--int8"])
    setup_logging()  # export's own setup_logging bound the log handler to the captured stream
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    for line in lines:
        logger.info("export: %s", line)
    return code, (lines[-1] if lines else "")


def choose_backend(model_dir: Path, requested: str | None) -> BackendChoice:
    if requested is not None:
        if requested != "torch" and not (model_dir / ONNX_FILES[requested]).is_file():
            if not _writable(model_dir):
                raise UserError(f"{model_dir / ONNX_FILES[requested]} not found and the folder is read-only; "
                                f"export it first (python -m jobtitles.export --model {model_dir} --int8) or use "
                                f"--backend torch")
            code, last = _export_int8(model_dir)
            if code != 0 and not (model_dir / ONNX_FILES[requested]).is_file():
                raise UserError(f"ONNX export of {model_dir} failed ({last}); use --backend torch")
        return BackendChoice(requested, "asked for with --backend")
    if (model_dir / ONNX_FILES["onnx-int8"]).is_file():
        return BackendChoice("onnx-int8", f"found {ONNX_FILES['onnx-int8']}")
    if not _onnxruntime_installed():
        return BackendChoice("torch", "onnxruntime is not installed (pip install '.[onnx]' for the faster backend)")
    if not _writable(model_dir):
        # the reason is shown by /info: it names no server path (the log line before it does)
        logger.info("%s is read-only", model_dir)
        return BackendChoice("torch", "the model folder is read-only, so the ONNX int8 export cannot be written "
                                      "there; export it once with python -m jobtitles.export --model <folder> --int8")
    logger.info("exporting %s to ONNX int8 (first use; checked against PyTorch on the run's CV rows)", model_dir)
    code, last = _export_int8(model_dir)
    if code == 0:
        return BackendChoice("onnx-int8", "exported on first use; parity check passed")
    # The int8 file did not pass (or could not be checked): remove what this call wrote so a later start does
    # not pick up an unchecked model.
    (model_dir / ONNX_FILES["onnx-int8"]).unlink(missing_ok=True)
    if code == 2 and (model_dir / ONNX_FILES["onnx"]).is_file():
        return BackendChoice("onnx", f"int8 could not be checked ({last.removeprefix('error: ')}); serving the "
                                     f"fp32 ONNX export")
    return BackendChoice("torch", f"int8 export failed its parity check ({last}); serving PyTorch")
