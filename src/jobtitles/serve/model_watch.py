"""Is the model folder on disk still the one being served? A cheap fingerprint (name, size and mtime_ns of every
file in the folder and its onnx/ subfolder), taken before loading and compared every few seconds in a
background task: a folder replaced or edited under a running server is logged once as a WARNING and reported
by /health ("model_changed": true). Nothing is reloaded: the server keeps serving what it loaded, and a
restart serves the new folder."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

logger = logging.getLogger("jobtitles.serve")
Fingerprint = tuple[tuple[str, int, int], ...]
MAX_FILES = 1000  # a folder with more entries than this is not a model folder; stops a check from taking long


def fingerprint(model_dir: Path) -> Fingerprint:
    """(relative name, size, mtime_ns) of each regular file; a missing or unreadable folder is ()."""
    found: list[tuple[str, int, int]] = []
    for folder in (model_dir, model_dir / "onnx"):
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if len(found) >= MAX_FILES:
                        break
                    if entry.is_file():
                        st = entry.stat()
                        found.append((os.path.relpath(entry.path, model_dir), st.st_size, st.st_mtime_ns))
        except OSError:  # no onnx/ subfolder, or the folder itself is gone
            continue
    return tuple(sorted(found))


class ModelWatch:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.served = fingerprint(model_dir)
        self.changed = False

    def check(self) -> bool:
        """Compare the folder with what was loaded; logs the first time it differs. Returns `changed`."""
        changed = fingerprint(self.model_dir) != self.served
        if changed and not self.changed:
            logger.warning("%s changed on disk since it was loaded; still serving the loaded model: restart the "
                           "server to serve the new files", self.model_dir)
        self.changed = changed
        return changed

    async def run(self, interval_s: float) -> None:
        """Check every `interval_s` seconds until cancelled (the stat calls run in a thread: a slow network
        mount must not hold the event loop)."""
        while True:
            await asyncio.sleep(interval_s)
            await asyncio.to_thread(self.check)
