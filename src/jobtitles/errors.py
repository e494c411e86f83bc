"""One exception type for everything a user can fix, and the CLI wrapper that prints it as one line."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

logger = logging.getLogger("jobtitles")

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable[..., int | None])


class UserError(Exception):
    """A problem with the user's input or config. The message names the file/row/key and the fix."""


def warn(message: str) -> None:
    """A problem the run survives: one line on stderr, also kept in the log."""
    logger.warning(message)


def cli_entry(func: F) -> F:
    """Run a CLI main: a UserError becomes `error: <message>` on stderr and exit code 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted: completed folds are kept; rerun the same command to resume", file=sys.stderr)
            return 130

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool = False) -> None:
    """Our messages as `LEVEL: text` on stderr. The logger still propagates, so test captures see it too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
