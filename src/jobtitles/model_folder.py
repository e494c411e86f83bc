"""The model folder's format on the prediction side: config.json read and checked (a folder may come from
someone else, so every key the project reads is validated here, with one line naming the file, key, expected
and found values), the folder's tokenizer, and the paths of its exports. Training writes this format
(`model_save.py`); nothing here imports training code."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from jobtitles.decision_rule import THRESHOLDS_KEY
from jobtitles.errors import UserError

ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_int8.onnx"}
MAX_CONFIG_BYTES = 16 << 20  # a config.json with 100,000 labels is a few MB


def read_model_config(model_dir: Path) -> dict[str, Any]:
    """config.json of a trained multi-label classifier, or a UserError that says what is wrong."""
    cfg_path = model_dir / "config.json"
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: model folder not found; pass the model/ folder of a run (outputs/<run>/model)")
    if not cfg_path.is_file():
        raise UserError(f"{model_dir}: no config.json, so this is not a saved model; pass outputs/<run>/model")
    if cfg_path.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{cfg_path}: {cfg_path.stat().st_size:,} bytes, more than the {MAX_CONFIG_BYTES:,} a "
                        "model's config can need; the model folder is damaged: re-copy it or retrain")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise UserError(f"{cfg_path}: not valid JSON ({str(err)[:150]}); the model folder is damaged, retrain or "
                        "re-copy it") from err
    if not isinstance(cfg, dict):
        raise UserError(f"{cfg_path}: expected a JSON object, found a {type(cfg).__name__}; the model folder is "
                        "damaged, retrain or re-copy it")
    id2label = cfg.get("id2label")
    if cfg.get("problem_type") != "multi_label_classification" or not isinstance(id2label, dict) or not id2label \
            or all(str(v).startswith("LABEL_") for v in id2label.values()):
        raise UserError(
            f"{model_dir}: not a trained multi-label classifier (expected problem_type "
            f"'multi_label_classification' and named labels in config.json, found problem_type "
            f"{cfg.get('problem_type')!r:.100}); pass the model/ folder written by train.py"
        )
    labels_of(cfg, cfg_path)
    for key in ("max_position_embeddings", "vocab_size"):
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"{cfg_path}: {key} must be a positive whole number, found {value!r:.100}; the model "
                            "folder is damaged, retrain or re-copy it")
    return cfg


def labels_of(cfg: dict[str, Any], where: Path | str) -> list[str]:
    """The label names in output order: id2label must map "0".."n-1" to distinct, non-empty names."""
    id2label = cfg["id2label"]
    expected = {str(i) for i in range(len(id2label))}
    names = [id2label.get(str(i)) for i in range(len(id2label))]
    if set(id2label) != expected or not all(isinstance(n, str) and n.strip() for n in names) \
            or len(set(names)) != len(names):
        found = dict(list(id2label.items())[:6])
        raise UserError(f"{where}: id2label must map '0'..'{len(id2label) - 1}' to distinct label names, found "
                        f"{found!r:.200}; the model folder is damaged, retrain or re-copy it")
    label2id = cfg.get("label2id")
    if isinstance(label2id, dict) and label2id and label2id != {n: i for i, n in enumerate(names)}:
        raise UserError(f"{where}: label2id does not match id2label (found {dict(list(label2id.items())[:6])!r:.200}); "
                        "the model folder is damaged, retrain or re-copy it")
    return names


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
                        f"{(str(err).splitlines() or [''])[0][:200]}); re-copy the whole model folder") from err
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


