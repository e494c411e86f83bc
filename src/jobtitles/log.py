"""The project's logger: progress and warnings as `LEVEL: text` lines on stderr."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("jobtitles")


def warn(message: str) -> None:
    """A problem the run survives: one line on stderr, also kept in the log."""
    logger.warning(message)


def setup_logging(verbose: bool = False) -> None:
    """Our messages as `LEVEL: text` on stderr. The logger still propagates, so test captures see it too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
