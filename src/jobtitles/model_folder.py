"""The model folder's format: the decision keys train.py adds to config.json, reading and checking them, the
folder's tokenizer, and the model card. Training writes this format and inference reads it; neither imports
the other."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from jobtitles.errors import UserError
from jobtitles.log import warn

THRESHOLDS_KEY = "decision_thresholds"
AT_LEAST_ONE_KEY = "decision_at_least_one"
EXCLUSIVE_KEY = "decision_exclusive_label"  # the empty label: never decided together with another label
GROUPS_KEY = "decision_label_groups"  # exclusive label groups decoded one label per group (when adopted)
SOFTMAX_GROUPS_KEY = "score_softmax_groups"  # groups trained with a softmax (group_loss: softmax): scores sum to 1
SOURCES_KEY = "decision_score_sources"  # {label: "baseline" | "blend"} for labels not scored by the transformer
ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_int8.onnx"}


def read_model_config(model_dir: Path) -> dict:
    """config.json of a trained multi-label classifier, or a UserError that says what is wrong."""
    cfg_path = model_dir / "config.json"
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: model folder not found; pass the model/ folder of a run (outputs/<run>/model)")
    if not cfg_path.is_file():
        raise UserError(f"{model_dir}: no config.json, so this is not a saved model; pass outputs/<run>/model")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{cfg_path}: not valid JSON ({err}); the model folder is damaged, retrain or re-copy it") from err
    id2label = cfg.get("id2label") or {}
    if cfg.get("problem_type") != "multi_label_classification" or not id2label or all(
        str(v).startswith("LABEL_") for v in id2label.values()
    ):
        raise UserError(
            f"{model_dir}: not a trained multi-label classifier (expected problem_type "
            f"'multi_label_classification' and named labels in config.json, found problem_type "
            f"{cfg.get('problem_type')!r}); pass the model/ folder written by train.py"
        )
    return cfg


def thresholds_from_config(cfg: dict, labels: list[str], model_dir: Path, override: float | None) -> np.ndarray:
    if override is not None:
        return np.full(len(labels), override)
    saved = cfg.get(THRESHOLDS_KEY)
    if saved is None:
        warn(f"{model_dir}: config.json has no {THRESHOLDS_KEY}; using 0.5 for every label")
        return np.full(len(labels), 0.5)
    if set(saved) != set(labels):
        raise UserError(
            f"{model_dir}: config.json thresholds are for labels {sorted(saved)} but the model has {sorted(labels)}; "
            f"the folder mixes two runs, re-save it with train.py"
        )
    return np.array([float(saved[lab]) for lab in labels])


@contextlib.contextmanager
def quiet_loading():
    """No per-tensor "Loading weights" progress bar for a model that loads in a fraction of a second."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_checked_tokenizer(model_dir: Path, cfg: dict):
    """The folder's own tokenizer, refused when it is missing or does not match the model: transformers can
    fall back to a tiny default vocabulary, and then every word becomes [UNK] and every title the same."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as err:  # noqa: BLE001 - a broken tokenizer file raises many types
        raise UserError(f"{model_dir}: the tokenizer does not load ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:200]}); re-copy the whole model folder") from err
    expected = int(cfg.get("vocab_size") or 0)
    # an embedding matrix may be padded to a multiple of 8 or 64, so a few unused rows are fine
    if expected and not expected * 0.9 <= len(tokenizer) <= expected:
        raise UserError(f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model expects {expected} "
                        "(vocab_size in config.json); the folder lacks its tokenizer files (tokenizer.json, "
                        "tokenizer_config.json, vocab.txt): re-copy the whole model folder")
    return tokenizer


def is_complete(model_dir: Path) -> bool:
    """A saved final model (its config carries the decision keys, which are written last)."""
    cfg = model_dir / "config.json"
    return cfg.is_file() and THRESHOLDS_KEY in json.loads(cfg.read_text(encoding="utf-8"))


def decision_config(result, softmax_trained: bool) -> dict:
    """The config.json keys that carry a run's shipped decision rule (`result` is a run_result.RunResult)."""
    groups = result.label_groups
    return {THRESHOLDS_KEY: result.thresholds, AT_LEAST_ONE_KEY: result.decision.at_least_one,
            EXCLUSIVE_KEY: result.decision.exclusive_label, SOURCES_KEY: result.shipped_sources(),
            GROUPS_KEY: groups if result.label_groups_used else None,
            SOFTMAX_GROUPS_KEY: groups if softmax_trained else None}


def write_card(model_dir: Path, result, project, training) -> None:
    """README.md of the model folder (model_card.make_card); best effort: a card problem never costs a model."""
    from jobtitles.model_card import make_card

    try:
        make_card(result, project, training).save(model_dir / "README.md")
    except Exception as err:  # noqa: BLE001
        warn(f"model card not written ({type(err).__name__}: {err}); the model itself is saved")
