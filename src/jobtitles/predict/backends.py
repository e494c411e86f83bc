"""Which backend predict.py and Spark use when none is asked for: the folder's int8 export when it passed its
parity check against PyTorch (and is still the file that did), else PyTorch, with one line saying how to get the
faster one. Nothing is exported or written as a side effect."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jobtitles.core.model_folder import ONNX_FILES, passed_parity

AUTO = "auto"
BACKENDS = ("torch", "onnx", "onnx-int8")


def resolve_backend(model_dir: Path, requested: str) -> tuple[str, str]:
    """(backend, why) for `requested` ("auto" or a backend name)."""
    if requested != AUTO:
        return requested, "asked for with --backend"
    int8 = ONNX_FILES["onnx-int8"]
    if importlib.util.find_spec("onnxruntime") is None:
        return "torch", 'onnxruntime is not installed (pip install "jobtitles[onnx]" for the faster int8 backend)'
    if passed_parity(Path(model_dir), "onnx-int8"):
        return "onnx-int8", f"{int8} passed its parity check against PyTorch (--backend torch to use PyTorch)"
    return "torch", (f"no int8 export that passed its parity check; the faster backend: python -m jobtitles.export "
                     f"--model {model_dir} --int8 (used by default afterwards)")
