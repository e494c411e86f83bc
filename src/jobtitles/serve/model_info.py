"""What /info and the page say about the model: its card (huggingface_hub.ModelCard: base model, CV figures)
and config.json; a missing or unreadable card leaves those fields empty instead of stopping the server."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("jobtitles.serve")


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
    from jobtitles.embedded import base_model_id

    path = model_dir.parent / "run_info.json"
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["config"]["project"]["model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return base_model_id(str(name))


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
    facts.model_name = getattr(data, "model_name", None)
    facts.base_model = getattr(data, "base_model", None) or facts.base_model
    for res in getattr(data, "eval_results", None) or []:
        if res.metric_name and isinstance(res.metric_value, (int, float)):
            facts.cv_metrics.append((res.metric_name, float(res.metric_value)))
    return facts
