"""A CSV (or .txt) upload read with the project's own reader (jobtitles.core.data.load_titles), so the page and
predict.py accept and refuse the same files with the same messages."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from jobtitles.core.errors import UserError
from jobtitles.serve.http_errors import ApiError, shown

SUFFIXES = (".csv", ".txt")


@dataclass
class Upload:
    titles: list[str]
    rows: list[int]
    gold: list[list[str]] | None
    name: str  # the client's file name, as messages show it


def _load(raw: bytes, name: str, suffix: str) -> Upload:
    from jobtitles.core.data import load_titles

    with tempfile.TemporaryDirectory(prefix="jobtitles-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(raw)
        try:
            titles, rows, gold = load_titles(path, fix="resave")  # the page has no delimiter to set
        except UserError as err:  # the reader names its temp path; the user knows the file by its own name
            message = str(err).replace(str(path), name).replace(tmp, "")  # no server path in any answer
            raise ApiError(400, "invalid_csv", message, "file") from err
        except csv.Error as err:
            raise ApiError(400, "invalid_csv", f"{name}: malformed CSV ({err}); check the quoting", "file") from err
    return Upload(titles, rows, gold, name)


async def read_upload(file: UploadFile, max_titles: int) -> Upload:
    full_name = Path(file.filename or "upload.csv").name
    name = shown(full_name)  # the client's choice, as messages show it: bounded, always encodable
    suffix = Path(full_name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ApiError(415, "unsupported_file", f"{name}: expected a .csv file (Title;Column 1;...) or a .txt "
                       f"file with one title per line", "file")
    raw = await file.read()  # bounded by the body limit
    upload = await run_in_threadpool(_load, raw, name, suffix)
    if len(upload.titles) > max_titles:
        raise ApiError(413, "too_many_titles", f"{name}: {len(upload.titles):,} titles; at most {max_titles:,} per "
                       f"request (--max_titles): split the file", "file")
    return upload
