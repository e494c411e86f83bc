"""One exception type for everything a user can fix, and the CLI wrapper that prints it as one line."""

from __future__ import annotations

import errno
import functools
import sys
from typing import Any, Callable, TypeVar

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable[..., int | None])


class UserError(Exception):
    """A problem with the user's input or config. The message names the file/row/key and the fix."""


def os_error_text(err: OSError) -> str:
    """One line for a file-system failure the user can act on (full disk, read-only, permissions, ...)."""
    where = err.filename or "a file"
    fixes = {errno.ENOSPC: "free some disk space or choose another output folder",
             errno.EROFS: "the file system is read-only; choose a writable output folder",
             errno.EACCES: "no permission; choose a folder you can write to",
             errno.EPERM: "no permission; choose a folder you can write to",
             errno.ENOTDIR: "a path component is a file, not a folder; choose another path",
             errno.EISDIR: "this is a folder; give a file name",
             errno.EDQUOT: "disk quota exceeded; free some space or choose another output folder"}
    fix = fixes.get(err.errno, "check the path and try again")
    return f"{where}: {err.strerror or err}; {fix}"


def cli_entry(func: F | None = None, *, interrupted: str = "interrupted") -> Any:
    """Decorate a CLI main (`@cli_entry` or `@cli_entry(interrupted=...)`): a UserError (or a file-system error)
    becomes one line `error: <message>` on stderr and exit code 2, no traceback; Ctrl-C prints `interrupted`
    (what was kept, how to go on) and exits 130."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except UserError as err:
                print(f"error: {err}", file=sys.stderr)
                return EXIT_USER_ERROR
            except OSError as err:  # a full disk or a read-only folder is the user's to fix, not a traceback
                print(f"error: {os_error_text(err)}", file=sys.stderr)
                return EXIT_USER_ERROR
            except KeyboardInterrupt:
                print(interrupted, file=sys.stderr)
                return 130

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
