"""Command-line entry points; train.py and predict.py at the top level only call these."""

from __future__ import annotations

import shlex
import sys

from jobtitles.core.errors import cli_entry
from jobtitles.core.log import setup_logging


@cli_entry(interrupted="interrupted: completed folds are kept; rerun the same command to resume")
def train_main(argv: list[str] | None = None) -> int:
    setup_logging()
    from jobtitles.train.config import parse_config
    from jobtitles.train.cv import cross_validate

    argv = sys.argv[1:] if argv is None else argv
    project, training = parse_config(argv)
    cross_validate(project, training, shlex.join([sys.argv[0], *argv]))
    return 0


@cli_entry(interrupted="interrupted: the rows predicted so far are kept in the .partial file named above")
def predict_main(argv: list[str] | None = None) -> int:
    setup_logging()
    from jobtitles.predict.predict_cli import main

    return main(sys.argv[1:] if argv is None else argv)


@cli_entry(interrupted="interrupted: nothing was written")
def suggest_main(argv: list[str] | None = None) -> int:
    setup_logging()
    from jobtitles.active.suggest_cli import main

    return main(sys.argv[1:] if argv is None else argv)
