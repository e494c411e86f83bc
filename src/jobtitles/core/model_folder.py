"""The model folder's format on the prediction side: config.json read and checked (a folder may come from
someone else, so every key the project reads is validated here, with one line naming the file, key, expected
and found values), the folder's tokenizer, and the paths of its exports. Training writes this format
(`model_save.py`); nothing here imports training code."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from jobtitles.core.decision_rule import THRESHOLDS_KEY
from jobtitles.core.errors import UserError

ONNX_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_int8.onnx"}
# What the export's parity check found, per file, with each file's SHA-256: a backend is chosen by default only
# when the file in the folder is the one that passed.
PARITY_FILE = "onnx/parity.json"
MAX_PARITY_BYTES = 1 << 20
# Training titles with their labels, written by training into the model folder, so a copied folder exports its
# int8 file and checks it against PyTorch by itself; kept out of Hub pushes (it is training data).
PARITY_ROWS = "parity_rows.csv"
MAX_PARITY_ROWS = 10_000  # enough to see a 0.5% disagreement (standard error 0.07%), quick to score 3 times
MAX_PARITY_ROWS_BYTES = 32 << 20  # read from a folder that may come from someone else: bounded before reading


def parity_sample(n: int, seed: int) -> np.ndarray:
    """Which of `n` rows are parity rows: all of them up to MAX_PARITY_ROWS, else a seeded sample in row order."""
    if n <= MAX_PARITY_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_PARITY_ROWS, replace=False))


# config.json: the labels a plain transformers pipeline answers differently for (scored outside the transformer,
# or by a softmax within their group)
# and the out-of-fold agreement; read by the Hub push and serve's /info to say so.
PIPELINE_GAP_KEY = "jobtitles_pipeline_gap"
MAX_CONFIG_BYTES = 16 << 20  # a config.json with 100,000 labels is a few MB
_BAD_NAME = re.compile(r"[|\x00-\x1f\x7f]")  # the label separator and control characters: training refuses them too
# Architecture sizes far above any encoder this project fine-tunes: a folder asking for 5,000 layers would
# hold the process for minutes while transformers builds the model, before any weight is read.
SIZE_LIMITS = {"num_hidden_layers": 96, "n_layers": 96, "num_layers": 96, "hidden_size": 16384, "dim": 16384,
               "d_model": 16384, "intermediate_size": 65536, "hidden_dim": 65536, "num_attention_heads": 256,
               "n_heads": 256, "max_position_embeddings": 1 << 20, "vocab_size": 1 << 22}


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
    for key, most in SIZE_LIMITS.items():
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most):
            raise UserError(f"{cfg_path}: {key} must be a whole number from 1 to {most:,}, found {value!r:.100}; "
                            "the model folder is damaged, retrain or re-copy it")
    _check_weight_files(model_dir)
    return cfg


def _check_weight_files(model_dir: Path) -> None:
    """A sharded checkpoint's index may name files outside the folder; this project writes one file."""
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        raise UserError(f"{index}: a sharded checkpoint, but train.py writes one model.safetensors; remove the index "
                        "file or re-copy the model folder")


def labels_of(cfg: dict[str, Any], where: Path | str) -> list[str]:
    """The label names in output order: id2label must map "0".."n-1" to distinct, non-empty names."""
    id2label = cfg["id2label"]
    expected = {str(i) for i in range(len(id2label))}
    names = [id2label.get(str(i)) for i in range(len(id2label))]
    if set(id2label) != expected or not all(isinstance(n, str) and n.strip() and not _BAD_NAME.search(n)
                                            for n in names) or len(set(names)) != len(names):
        found = dict(list(id2label.items())[:6])
        raise UserError(f"{where}: id2label must map '0'..'{len(id2label) - 1}' to distinct label names, found "
                        f"{found!r:.200}; the model folder is damaged, retrain or re-copy it")
    label2id = cfg.get("label2id")
    if label2id is not None and label2id != {n: i for i, n in enumerate(names)}:
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
        # never the folder's own code (auto_map): transformers would otherwise ask, and a piped title can answer
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - a broken tokenizer file raises many types
        raise UserError(f"{model_dir}: the tokenizer does not load ({type(err).__name__}: "
                        f"{(str(err).splitlines() or [''])[0][:200]}); re-copy the whole model folder") from err
    expected = int(cfg.get("vocab_size") or 0)
    # an embedding matrix may be padded to a multiple of 8 or 64, so a few unused rows are fine
    if expected and not expected * 0.9 <= len(tokenizer) <= expected:
        raise UserError(f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model expects {expected} "
                        "(vocab_size in config.json); the folder lacks its tokenizer files (tokenizer.json, "
                        "tokenizer_config.json, vocab.txt): re-copy the whole model folder")
    largest = max(tokenizer.get_vocab().values(), default=0)
    if expected and largest >= expected:
        raise UserError(f"{model_dir}: the tokenizer has token id {largest} but the model has {expected} embeddings "
                        "(vocab_size in config.json); the folder mixes two models: re-copy the whole model folder")
    if tokenizer.pad_token_id is None:
        raise UserError(f"{model_dir}: the tokenizer has no padding token (pad_token in tokenizer_config.json); "
                        "re-copy the whole model folder")
    return tokenizer


def is_complete(model_dir: Path) -> bool:
    """A saved final model (its config carries the decision keys, which are written last)."""
    cfg = model_dir / "config.json"
    return cfg.is_file() and THRESHOLDS_KEY in json.loads(cfg.read_text(encoding="utf-8"))




def passed_parity(model_dir: Path, backend: str) -> bool:
    """The folder's export for `backend` ("onnx", "onnx-int8") passed its parity check against PyTorch, and the
    file is still the one checked (its SHA-256). Anything unreadable or unexpected in the record: False."""
    from jobtitles.core.io_utils import sha256_file

    record_path, model_path = model_dir / PARITY_FILE, model_dir / ONNX_FILES[backend]
    try:
        if not model_path.is_file() or record_path.stat().st_size > MAX_PARITY_BYTES:
            return False
        record = json.loads(record_path.read_text(encoding="utf-8"))
        check = record["checks"][backend]
        return check.get("ok") is True and record["sha256"][ONNX_FILES[backend]] == sha256_file(model_path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def pipeline_gap_line(cfg: dict[str, Any]) -> str | None:
    """The config's pipeline-gap record as one sentence (None without one or when it is not what train.py
    writes: a folder from elsewhere may hold anything)."""
    gap = cfg.get(PIPELINE_GAP_KEY)
    try:
        named = ", ".join(f"{str(lab)[:80]} ({str(src)[:20]})" for lab, src in list(gap["sources"].items())[:50])
        agreement, rows = float(gap["agreement"]), int(gap["n_rows"])
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
        return None
    line = (f"a plain transformers pipeline answers differently for {named}: it shows the transformer's sigmoid "
            f"per label, while those labels are scored by another source or a softmax within their group; label "
            f"sets agree on {agreement:.1%} of the {rows} out-of-fold titles")
    try:
        if gap.get("train_agreement") is not None:
            line += f" and on {float(gap['train_agreement']):.1%} of the final model's training titles"
        per_label = _gap_jaccard(gap)
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
        return line
    return line + (f"; labels whose titles differ most (Jaccard of the titles each gives the label, the lower of "
                   f"out-of-fold and training): {per_label}" if per_label else "")


def _gap_jaccard(gap: dict[str, Any], most: int = 8) -> str:
    """'label 0.38, ...': the labels whose titles differ between the two, lowest Jaccard first (any label: the
    empty label can differ without leaving the transformer); empty for records without per-label figures."""
    lowest: dict[str, float] = {}
    for key in ("label_jaccard", "train_label_jaccard"):
        values = gap.get(key)
        for lab, value in (list(values.items())[:200] if isinstance(values, dict) else []):
            lowest[str(lab)[:80]] = min(float(value), lowest.get(str(lab)[:80], 1.0))
    worst = sorted((v, lab) for lab, v in lowest.items() if v < 1.0)[:most]
    return ", ".join(f"{lab} {v:.2f}" for v, lab in worst)
