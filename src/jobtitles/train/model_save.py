"""What training adds to a model folder besides the weights and tokenizer: the shipped decision rule and
scoring in config.json, the model card, and the rows the int8 export is checked on. The prediction side reads
this format through model_folder.py."""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any

import numpy as np

from jobtitles.core.io_utils import write_text
from jobtitles.core.log import warn


def decision_config(result) -> dict[str, Any]:
    """The config.json keys that carry a run's shipped rule and scoring (`result` is a run_result.RunResult)."""
    from jobtitles.core.model_folder import PIPELINE_GAP_KEY

    out = {**result.shipped_rule().to_config(), **result.shipped_scoring().to_config()}
    if result.pipeline_gap is not None:
        out[PIPELINE_GAP_KEY] = dataclasses.asdict(result.pipeline_gap)
    return out


def write_card(model_dir: Path, result, project, training, data, run_dir: Path) -> None:
    """README.md of the model folder (model_card.make_card) for a model trained on `data` (LabeledData); best
    effort: a card problem never costs a model."""
    from jobtitles.reporting.model_card import make_card, recorded_sha256, training_data

    try:
        facts = training_data(data, result.labels, recorded_sha256(run_dir))
        make_card(result, project, training, facts).save(model_dir / "README.md")
    except Exception as err:  # noqa: BLE001
        warn(f"model card not written ({type(err).__name__}: {err}); the model itself is saved")


def write_parity_rows(model_dir: Path, data, seed: int) -> int:
    """parity_rows.csv: the training titles (`data`: LabeledData) with their labels, at most MAX_PARITY_ROWS of
    them (a seeded sample, in file order), for the export's parity check wherever the folder is copied.
    Returns the number of rows written."""
    from jobtitles.core.labels import join_labels
    from jobtitles.core.model_folder import PARITY_ROWS, parity_sample
    from jobtitles.core.spreadsheet import csv_text, escape_cell

    rows = parity_sample(len(data), seed)
    # the labels as trained (the empty label included), like oof_predictions.csv
    gold = (join_labels([data.labels[j] for j in np.flatnonzero(data.y[i])]) for i in rows)
    cells = ([escape_cell(data.titles[i]), escape_cell(g)] for i, g in zip(rows, gold))
    write_text(model_dir / PARITY_ROWS, csv_text(["title", "gold"], cells))
    return len(rows)
