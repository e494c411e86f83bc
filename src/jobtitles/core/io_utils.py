"""Atomic file writes and hashing: a crash never leaves a half-written file that looks complete."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from jobtitles.core.errors import UserError

# Below this many free bytes after a failed write, the disk was full (libraries that lose the errno say so).
FULL_DISK_BYTES = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_temporary(name: str) -> bool:
    """A temporary name this project writes beside a file (`.<name>.<random>.tmp`): never a user's file."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files and folders a killed process left in `folder` (not below it)."""
    stale = [p for p in folder.iterdir() if is_temporary(p.name)] if folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
    return stale


def _disk_full(err: BaseException, folder: Path) -> bool:
    """Did this non-OSError write failure come from a full disk? safetensors says `os error 28`; torch.save and
    the ONNX writer lose the errno, so the free space after the failure decides."""
    text = f"{err} {err.__cause__ or ''} {err.__context__ or ''}"
    if os.strerror(errno.ENOSPC) in text or f"os error {errno.ENOSPC}" in text:
        return True
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path(folder.anchor or "."))
    return shutil.disk_usage(existing).free < FULL_DISK_BYTES


@contextlib.contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """A failed write under `path` ends as an OSError naming `path` (cli_entry turns it into one line): an
    OSError without a file name gets this one; a full disk reported as another exception becomes ENOSPC."""
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = str(path)
        raise
    except UserError:
        raise
    except Exception as err:
        if _disk_full(err, path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        raise


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for the caller to write; it replaces `path` only when the block ends
    without an error, and is removed otherwise, so `path` is either the old file or the complete new one."""
    with disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with disk_errors(path):  # judged before the partial file is removed (its size tells a full disk)
            yield Path(tmp)
            # mkstemp creates 0600; a run's files get the mode any new file gets (teammates may read the report)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)  # atomic on POSIX and Windows within one filesystem
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    _atomic(Path(path), lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> None:
    _atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_npy(path: str | Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    _atomic(Path(path), write)


def replace_dir(src: Path, dst: Path) -> None:
    """Move a fully written folder into place; the old one (if any) goes only after the new one is complete."""
    old = dst.with_name(f".{dst.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    if old.exists():
        shutil.rmtree(old)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
