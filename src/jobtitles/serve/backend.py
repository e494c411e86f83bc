"""Which backend serves a model folder: the one asked for, or the fastest that keeps the answers (the folder's
ONNX int8 export when it passed its parity check and is still the file that did; exported into the folder on
first use, with a warning naming the files, when there is none; torch otherwise). Chosen once per server, by
serve.py before uvicorn starts or by the app's lifespan."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobtitles.core.errors import UserError, os_error_text
from jobtitles.core.model_folder import ONNX_FILES, PARITY_FILE, passed_parity
from jobtitles.predict.export import PARITY_FAILED

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


def _export_int8(model_dir: Path) -> tuple[bool, str | None]:
    """Export and check the int8 file (export's own function: parity check, int8 fallback), its lines logged.
    (passed, None) when the checks ran; (False, why) when they could not run (no parity rows, a full disk)."""
    from jobtitles.predict.export import export_model

    try:
        report = export_model(model_dir, int8=True, say=lambda line: logger.info("export: %s", line))
    except UserError as err:
        return False, str(err)
    except OSError as err:
        return False, os_error_text(err)
    return report.passed, None


def choose_backend(model_dir: Path, requested: str | None) -> BackendChoice:
    if requested is not None:
        if requested != "torch" and not (model_dir / ONNX_FILES[requested]).is_file():
            if not _writable(model_dir):
                raise UserError(f"{model_dir / ONNX_FILES[requested]} not found and the folder is read-only; "
                                f"export it first (python -m jobtitles.export --model {model_dir} --int8) or use "
                                f"--backend torch")
            passed, why = _export_int8(model_dir)
            if not passed and not (model_dir / ONNX_FILES[requested]).is_file():
                raise UserError(f"ONNX export of {model_dir} failed ({why or PARITY_FAILED}); use --backend torch")
        return BackendChoice(requested, "asked for with --backend")
    int8 = ONNX_FILES["onnx-int8"]
    if passed_parity(model_dir, "onnx-int8"):
        return BackendChoice("onnx-int8", f"{int8} passed its parity check against PyTorch")
    if (model_dir / int8).is_file():  # not ours to replace: serve what is known to answer right
        return BackendChoice("torch", f"{int8} has no passed parity check against PyTorch (or was replaced since); "
                                      f"check it: python -m jobtitles.export --model <folder> --int8")
    if not _onnxruntime_installed():
        return BackendChoice("torch", "onnxruntime is not installed (pip install '.[onnx]' for the faster backend)")
    if not _writable(model_dir):
        # the reason is shown by /info: it names no server path (the log line before it does)
        logger.info("%s is read-only", model_dir)
        return BackendChoice("torch", "the model folder is read-only, so the ONNX int8 export cannot be written "
                                      "there; export it once with python -m jobtitles.export --model <folder> --int8")
    logger.warning("writing %s, %s and %s into %s: ONNX int8 export on first use, checked against PyTorch on the "
                   "folder's parity rows (--backend torch serves without writing)", ONNX_FILES["onnx"], int8,
                   PARITY_FILE, model_dir)
    passed, why = _export_int8(model_dir)
    if passed:
        return BackendChoice("onnx-int8", "exported on first use; parity check passed")
    # The int8 file did not pass (or could not be checked): remove what this call wrote so a later start does
    # not pick up an unchecked model.
    (model_dir / ONNX_FILES["onnx-int8"]).unlink(missing_ok=True)
    if why is not None and (model_dir / ONNX_FILES["onnx"]).is_file():
        return BackendChoice("onnx", f"int8 could not be checked ({why}); serving the fp32 ONNX export")
    if why is not None:  # e.g. no titles to calibrate and check on: nothing was written
        return BackendChoice("torch", f"int8 could not be exported ({why}); serving PyTorch")
    return BackendChoice("torch", f"int8 export failed its parity check ({PARITY_FAILED}); serving PyTorch")
