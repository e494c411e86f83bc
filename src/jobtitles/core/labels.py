"""How label sets are written as text in every file the project writes: one separator, checked label names."""

from __future__ import annotations

LABEL_SEP = " | "  # oof_predictions.csv, predictions CSV, label_issues.csv; labels may not contain '|'


def join_labels(labels: list[str]) -> str:
    return LABEL_SEP.join(labels)


def split_labels(text: str) -> list[str]:
    return [part for part in text.split(LABEL_SEP) if part] if text else []
