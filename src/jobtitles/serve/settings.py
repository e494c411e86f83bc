"""What a server is started with: one dataclass, filled by the CLI or by create_app's keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jobtitles.cores import usable_cores

BACKENDS = ("torch", "onnx", "onnx-int8")
API_KEY_ENV = "JOBTITLES_API_KEY"
AUTO_WORKERS_MAX = 8  # each worker holds a model copy: bounds memory on many-core hosts


@dataclass(frozen=True)
class ServeSettings:
    model_dir: Path
    backend: str | None = None        # None: the fastest available (onnx-int8, exported on first use)
    backend_reason: str | None = None # why `backend` was chosen, when the caller chose it (serve.py does)
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

    def worker_count(self, on_gpu: bool = False) -> int:
        """--workers, or: one per core up to AUTO_WORKERS_MAX; one on a GPU, which runs each batch on its own."""
        return self.workers or (1 if on_gpu else min(usable_cores(), AUTO_WORKERS_MAX))

    def worker_threads(self, on_gpu: bool = False) -> int:
        return self.threads or max(1, usable_cores() // self.worker_count(on_gpu))

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
