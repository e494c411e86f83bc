"""Command-line entry points; train.py and predict.py at the top level only call these."""

from __future__ import annotations

import os
import sys

from jobtitles.errors import cli_entry
from jobtitles.log import setup_logging


@cli_entry(interrupted="interrupted: completed folds are kept; rerun the same command to resume")
def train_main(argv: list[str] | None = None) -> int:
    setup_logging()
    from jobtitles.config import parse_config
    from jobtitles.cv import cross_validate

    project, training = parse_config(sys.argv[1:] if argv is None else argv)
    cross_validate(project, training)
    return 0


@cli_entry(interrupted="interrupted: the rows predicted so far are kept in the .partial file named above")
def predict_main(argv: list[str] | None = None) -> int:
    setup_logging()
    from jobtitles.predict_cli import main

    return main(sys.argv[1:] if argv is None else argv)


def quiet_libraries() -> None:
    """Library chatter that says nothing to our users: tokenizer fork warnings, the load report that says the
    new classification head is newly initialised (it always is), per-file weight-loading progress bars."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
