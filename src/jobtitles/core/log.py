"""The project's logger: progress and warnings as `LEVEL: text` lines on stderr."""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("jobtitles")


def warn(message: str) -> None:
    """A problem the run survives: one line on stderr, also kept in the log."""
    logger.warning(message)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a message is logged, not when logging was set up: a notebook, a test
    capture or a redirect may replace (and close) the stream the handler was made with. (logging's own
    last-resort handler does the same, through a private class this module does not rely on.)"""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(verbose: bool = False) -> None:
    """Our messages as `LEVEL: text` on stderr. The logger still propagates, so test captures see it too."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def quiet_libraries() -> None:
    """Library chatter that says nothing to our users: tokenizer fork warnings, the load report that says the
    new classification head is newly initialised (it always is), per-file weight-loading progress bars."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
