"""Pushing the final model folder to the Hugging Face Hub (push_to_hub / hub_model_id of TrainingArguments)."""

from __future__ import annotations

from pathlib import Path

from transformers import TrainingArguments

from jobtitles.core.errors import UserError
from jobtitles.core.log import logger, warn
from jobtitles.core.model_folder import PARITY_ROWS


def check_hub_settings(training: TrainingArguments) -> None:
    if training.push_to_hub and not training.hub_model_id:
        raise UserError("push_to_hub is true but hub_model_id is not set; set hub_model_id: <user>/<repo>")


def warn_pipeline_gap(model_dir: Path) -> None:
    """Before a push: the Hub widget, Inference Endpoints and TEI run the plain pipeline; say what it misses."""
    from jobtitles.core.model_folder import pipeline_gap_line, read_model_config

    try:
        line = pipeline_gap_line(read_model_config(model_dir))
    except UserError:  # not a model folder this can read: the upload itself says what is wrong
        return
    if line:
        warn(f"pushing {model_dir}: on the Hub, {line}; the card says so in its first lines")


def push(model_dir: Path, training: TrainingArguments) -> None:
    from huggingface_hub import HfApi

    check_hub_settings(training)
    warn_pipeline_gap(model_dir)
    api = HfApi(token=training.hub_token)
    api.create_repo(training.hub_model_id, private=bool(training.hub_private_repo), exist_ok=True)
    # the parity rows are training titles: a user's data stays off the Hub (export there with --titles)
    logger.info(f"pushing {model_dir} without {PARITY_ROWS} (training titles)")
    api.upload_folder(repo_id=training.hub_model_id, folder_path=str(model_dir),
                      commit_message="Upload multi-label job-title classifier", ignore_patterns=[PARITY_ROWS])
    logger.info(f"pushed {model_dir} to https://huggingface.co/{training.hub_model_id}")
