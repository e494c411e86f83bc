"""The TF-IDF baseline inside a model folder (`baseline.skops`): written by training, read by every backend.

skops builds objects without pickle, but it trusts many scikit-learn types by default, and a file of such
types (a Pipeline of FunctionTransformers over any importable function) would still run code on load or on
the first prediction. So a file is read only when every node of its schema is one of the exact (type, node
kind) pairs that `baseline.make_baseline` writes: no prefixes, no functions, no methods, no reduce nodes.
The loaded object is then checked to score every label of the model before anyone uses it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jobtitles.core.errors import UserError

BASELINE_FILE = "baseline.skops"
# Every (module.type, skops node kind) a fitted `make_baseline()` pipeline is written with (sklearn 1.4-1.9).
ALLOWED_NODES = frozenset({
    ("builtins.dict", "DictNode"), ("builtins.list", "ListNode"), ("builtins.tuple", "TupleNode"),
    ("builtins.str", "JsonNode"), ("builtins.int", "JsonNode"), ("builtins.float", "JsonNode"),
    ("builtins.bool", "JsonNode"), ("builtins.NoneType", "JsonNode"), ("builtins.str", "TypeNode"),
    ("numpy.float64", "TypeNode"), ("numpy.int64", "TypeNode"), ("numpy.ndarray", "NdArrayNode"),
    ("sklearn.pipeline.Pipeline", "ObjectNode"), ("sklearn.pipeline.FeatureUnion", "ObjectNode"),
    ("sklearn.feature_extraction.text.TfidfVectorizer", "ObjectNode"),
    ("sklearn.feature_extraction.text.TfidfTransformer", "ObjectNode"),
    ("sklearn.multiclass.OneVsRestClassifier", "ObjectNode"),
    ("sklearn.linear_model._logistic.LogisticRegression", "ObjectNode"),
    ("sklearn.preprocessing._label.LabelBinarizer", "ObjectNode"),
})
MAX_UNPACKED_BYTES = 4 << 30  # far above a baseline of 500,000 titles; a zip bomb stops here


def save_baseline(model, model_dir: Path) -> None:
    import skops.io as sio

    tmp = model_dir / f".{BASELINE_FILE}.tmp"
    sio.dump(model, tmp)
    tmp.replace(model_dir / BASELINE_FILE)


def _nodes(node: Any, found: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(module.type, node kind) of every node of a skops schema."""
    if isinstance(node, dict):
        if "__loader__" in node or "__class__" in node:
            found.add((f"{node.get('__module__')}.{node.get('__class__')}", str(node.get("__loader__"))))
        for value in node.values():
            _nodes(value, found)
    elif isinstance(node, list):
        for value in node:
            _nodes(value, found)
    return found


def _schema(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise UserError(f"{path}: unpacks to {unpacked:,} bytes, more than the {MAX_UNPACKED_BYTES:,} a "
                                "baseline can need; refusing to load it: retrain or re-copy the model folder")
            return json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, OSError) as err:
        raise UserError(f"{path}: not a skops file written by train.py ({type(err).__name__}: "
                        f"{str(err)[:120]}); re-copy the model folder or retrain") from err


def _settings(model) -> dict[str, Any]:
    """Every hyperparameter of the pipeline by its deep name, estimators and step lists left out (their own
    hyperparameters are listed under their names)."""
    def plain(value: Any) -> bool:
        items = value if isinstance(value, (list, tuple)) else [value]
        return not any(hasattr(v, "get_params") or isinstance(v, (list, tuple)) and any(
            hasattr(x, "get_params") for x in v) for v in items)

    return {k: v for k, v in model.get_params(deep=True).items() if plain(v) and not k.endswith("random_state")}


def _check_settings(model, path: Path) -> None:
    """Allowed types can still carry hostile settings (a token_pattern that backtracks for minutes, input=
    'filename' that opens the title as a path, n_jobs that starts processes): every setting must be the one
    `make_baseline` writes."""
    from jobtitles.core.baseline import make_baseline

    expected, found = _settings(make_baseline()), _settings(model) if hasattr(model, "get_params") else {}
    differ = sorted(k for k in set(expected) | set(found) if k not in found or k not in expected
                    or type(found[k]) is not type(expected[k]) or found[k] != expected[k])
    if type(model).__name__ != "Pipeline" or differ:
        shown = ", ".join(f"{k}={found.get(k, '(missing)')!r:.60}" for k in differ[:3])
        raise UserError(f"{path}: the baseline's settings differ from the ones train.py writes ({shown}); "
                        "refusing to load it: retrain, or re-copy the folder from its source")


def load_baseline(model_dir: Path, n_labels: int):
    """The saved TF-IDF + logistic regression pipeline, refused unless it is built from exactly the types the
    project writes and scores `n_labels` labels."""
    import skops.io as sio

    path = model_dir / BASELINE_FILE
    if not path.is_file():
        raise UserError(f"{path} not found, but config.json sends some labels to the baseline; re-copy the "
                        "whole model folder")
    foreign = sorted(_nodes(_schema(path), set()) - ALLOWED_NODES)
    if foreign:
        names = ", ".join(f"{t} ({kind})" for t, kind in foreign[:3])
        raise UserError(f"{path}: holds {len(foreign)} types the project never writes ({names}); refusing to load "
                        "it (a baseline file can be made to run code): retrain, or re-copy the folder from its source")
    try:
        model = sio.load(path, trusted=sorted({t for t, _ in ALLOWED_NODES}))
        _check_settings(model, path)
        probe = np.asarray(model.predict_proba(np.asarray(["chief executive officer"], dtype=object)))
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged file fails in many ways, none of them the user's fault
        raise UserError(f"{path}: the baseline does not load or score ({type(err).__name__}: {str(err)[:120]}); "
                        "re-copy the model folder or retrain") from err
    if probe.shape != (1, n_labels) or not np.all(np.isfinite(probe)) or probe.min() < 0 or probe.max() > 1:
        raise UserError(f"{path}: the baseline scores {probe.shape[-1] if probe.ndim else 0} labels per title "
                        f"(expected {n_labels} probabilities); the folder mixes two runs: retrain or re-copy it")
    return model
