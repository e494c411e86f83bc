"""What /info and the page say about the model: its card (huggingface_hub.ModelCard: base model, CV figures)
and config.json; a missing or unreadable card leaves those fields empty instead of stopping the server. Names
that are paths on the server (a local base model, a hand-edited card) are shown by their last part only: no
answer names a server path."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("jobtitles.serve")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")  # "distilbert-base-uncased", "org/name"

# an absolute POSIX or Windows path (not a URL, not "and/or"); group 1 is its last part
ABS_PATH = re.compile(r"(?<![\w.~:/-])(?:[A-Za-z]:)?[\\/](?:[^\s\\/'\"()]+[\\/])*([^\s\\/'\"()]*)")


def without_paths(text: str) -> str:
    """Text for a client (the backend's reason, which may quote the export's last line) with every absolute
    path cut to its last part."""
    return ABS_PATH.sub(lambda m: m.group(1) or "/", text)


def public_name(name: object) -> str | None:
    """A Hub id as it is; anything else that looks like a path by its last part ("/srv/models/bert" -> "bert")."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    if HUB_ID.fullmatch(name) and ".." not in name:
        return name
    last = re.split(r"[\\/]+", name.rstrip("/\\"))[-1]
    return f"{last} (a local folder)" if last else None


@dataclass
class CardFacts:
    model_name: str | None = None
    base_model: str | None = None
    cv_metrics: list[tuple[str, float]] = field(default_factory=list)  # ("CV micro-F1 (5-fold)", 0.9942)

    def metric(self, prefix: str) -> float | None:
        """The value of the first metric whose name starts with `prefix` ("CV micro-F1")."""
        return next((v for name, v in self.cv_metrics if name.startswith(prefix)), None)


def _base_from_run_info(model_dir: Path) -> str | None:
    """Local or embedded base models are not named in the card's metadata; the run folder's run_info.json is."""
    from jobtitles.core.embedded import base_model_id

    path = model_dir.parent / "run_info.json"
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["config"]["project"]["model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return public_name(base_model_id(str(name)))


def read_card(model_dir: Path) -> CardFacts:
    from huggingface_hub import ModelCard

    path = model_dir / "README.md"
    facts = CardFacts(base_model=_base_from_run_info(model_dir))
    if not path.is_file():
        logger.warning("%s: no model card; /info will have no CV figures", model_dir)
        return facts
    try:
        data = ModelCard.load(path).data
    except Exception as err:  # a hand-edited card must not stop the server
        logger.warning("%s: model card not readable (%s); /info will have no CV figures", path, err)
        return facts
    facts.model_name = public_name(getattr(data, "model_name", None))
    facts.base_model = public_name(getattr(data, "base_model", None)) or facts.base_model
    for res in getattr(data, "eval_results", None) or []:
        if res.metric_name and isinstance(res.metric_value, (int, float)):
            facts.cv_metrics.append((res.metric_name, float(res.metric_value)))
    return facts
