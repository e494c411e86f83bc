"""What a server is started with: one frozen dataclass, filled by the CLI or by the caller of `create_app`, and
checked in one place (__post_init__), so `ServeSettings(..., max_titles=0)` is refused as `serve.py --max_titles 0`."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from jobtitles.core.cores import usable_cores
from jobtitles.core.errors import UserError

BACKENDS = ("torch", "onnx", "onnx-int8")
API_KEY_ENV = "JOBTITLES_API_KEY"
AUTO_WORKERS_MAX = 8  # each worker holds a model copy: bounds memory on many-core hosts

# What each checked field may be: (kind, what the message says is expected).
_POSITIVE = "a positive number"
_RULES: dict[str, tuple[type, bool, str]] = {  # field -> (type, zero allowed, expected)
    "max_titles": (int, False, _POSITIVE),
    "max_batch_titles": (int, False, _POSITIVE),
    "batch_size": (int, False, _POSITIVE),
    "workers": (int, True, "0 (one per core) or a positive number"),
    "threads": (int, True, "0 (every core) or a positive number"),
    "max_body_mb": (float, False, "a positive number of megabytes"),
    "batch_wait_ms": (float, True, "0 or a positive number of milliseconds"),
    "body_timeout": (float, False, "a positive number of seconds"),
    "header_timeout": (float, False, "a positive number of seconds"),
    "shutdown_timeout": (float, False, "a positive number of seconds"),
    "model_check_s": (float, True, "0 (never) or a positive number of seconds"),
    "cache_titles": (int, True, "0 (no cache) or a positive number of titles"),
}


@dataclass(frozen=True)
class ServeSettings:
    model_dir: Path
    backend: str | None = None        # None: the fastest available (onnx-int8, exported on first use)
    max_titles: int = 1000            # titles per request (JSON list or CSV rows)
    max_body_mb: float = 2.0          # request body limit, checked on Content-Length and on the bytes received
    api_key: str | None = None        # checked on every route except /health and the page's files
    batch_wait_ms: float = 0.0        # after the first queued request, wait this long for more to share its batch
                                      # (0: only those that queued while the model was busy; measured best)
    max_batch_titles: int = 64        # titles per model call when coalescing requests
    batching: bool = True             # False: every request is its own model call
    batch_size: int = 16              # titles per forward pass inside one model call (length-sorted: less padding)
    workers: int = 0                  # model worker threads, each with its own copy of the model (0: one per core)
    threads: int = 0                  # intra-op threads per worker (0: this process's cores / workers)
    gc_freeze: bool = True            # move the objects alive after loading out of the garbage collector's reach
    # A whole body must arrive within this many seconds of its headers: 2 MB (the default limit) in 10 s needs
    # 1.6 Mbit/s; a usual request (100 titles, 4 kB) takes milliseconds even on a mobile link. A longer wait
    # only lets slow or stalled clients hold connections.
    body_timeout: float = 10.0
    # The request line and headers must arrive within this many seconds of the connection opening (or of the
    # previous answer on a kept-alive connection); uvicorn itself has no such limit.
    header_timeout: float = 10.0
    # SIGTERM: requests in flight get this long to finish, then are answered 503 and the process exits 0; under
    # docker stop's 10 s and Kubernetes' 30 s grace periods.
    shutdown_timeout: float = 5.0
    model_check_s: float = 5.0        # how often the model folder is checked for replaced files (0: never)
    cache_titles: int = 10000         # answers of the most recent distinct titles kept, shared by the workers
    label_folder: Path | None = None  # the labelling view's folder (suggestions.csv in, labelled.csv out); None: off

    def __post_init__(self) -> None:
        if not isinstance(self.model_dir, (str, Path)) or not str(self.model_dir):
            raise UserError(f"--model: expected a model folder path, found {self.model_dir!r}")
        object.__setattr__(self, "model_dir", Path(self.model_dir))  # a str from a notebook is fine too
        if self.label_folder is not None:
            if not isinstance(self.label_folder, (str, Path)) or not str(self.label_folder):
                raise UserError(f"--label_folder: expected a folder path, found {self.label_folder!r}")
            object.__setattr__(self, "label_folder", Path(self.label_folder))
        for name, (kind, zero_ok, expected) in _RULES.items():
            _check(name, getattr(self, name), kind, zero_ok, expected)
        if self.backend is not None and self.backend not in BACKENDS:
            raise UserError(f"--backend: expected one of {', '.join(BACKENDS)}, found {self.backend!r}")
        for name in ("batching", "gc_freeze"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"{name}: expected True or False, found {getattr(self, name)!r}")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise UserError(f"--api_key: expected a string, found {type(self.api_key).__name__}")

    def worker_count(self, on_gpu: bool = False) -> int:
        """--workers, or: one per core up to AUTO_WORKERS_MAX; one on a GPU, which runs each batch on its own."""
        return self.workers or (1 if on_gpu else min(usable_cores(), AUTO_WORKERS_MAX))

    def worker_threads(self, on_gpu: bool = False) -> int:
        return self.threads or max(1, usable_cores() // self.worker_count(on_gpu))

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def _check(name: str, value: object, kind: type, zero_ok: bool, expected: str) -> None:
    """One line naming the flag, what it may be and what it was; bools and NaN are not numbers here."""
    numeric = (int,) if kind is int else (int, float)
    ok = (isinstance(value, numeric) and not isinstance(value, bool) and math.isfinite(value)
          and (value > 0 or (zero_ok and value == 0)))
    if not ok:
        raise UserError(f"--{name}: expected {expected}, found {value!r}")


def defaults() -> dict[str, object]:
    """The fields' defaults (the CLI's flag defaults), without building settings for a model folder."""
    return {f.name: f.default for f in fields(ServeSettings) if f.name != "model_dir"}
