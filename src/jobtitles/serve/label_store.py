"""The label folder's two files (`serve --label_folder DIR`): DIR/suggestions.csv, read only (`jobtitles suggest`
writes it), and DIR/labelled.csv, the one file the server writes there. Accepted rows are appended in the
model's training schema (jobtitles.core.training_schema) so the file can be appended to the training file or
trained on as it is: the old bytes and the new rows go to a temp file beside it, which then replaces it, under
a lock, so two accepts at once both land and a failed write leaves the old file as it was.

The files are the server's own but may have been edited by hand: they are read bounded in size, and what is
wrong with them is a 409 JSON answer naming the file (by name: no answer names a server path) and the row."""

from __future__ import annotations

import csv
import errno
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from jobtitles.core.errors import UserError, os_error_text
from jobtitles.core.io_utils import write_bytes
from jobtitles.core.labels import split_labels
from jobtitles.core.spreadsheet import unescape_cell
from jobtitles.core.training_schema import SUGGESTION_COLUMNS, TrainingSchema
from jobtitles.serve.http_errors import ApiError, shown

SUGGESTIONS, LABELLED = "suggestions.csv", "labelled.csv"
# Far above the few thousand rows a labelling round has; bounds what one request reads and parses.
MAX_FILE_BYTES = 16 << 20
EXTRA_COLUMNS = SUGGESTION_COLUMNS


def title_key(title: str) -> str:
    """One title however it is spaced or cased: how suggestions and labelled rows are matched."""
    return " ".join(title.split()).casefold()


@dataclass(frozen=True)
class Suggestion:
    title: str
    labels: tuple[str, ...] | None  # None: the file suggests none, the model's own labels are shown
    reason: str
    pool_count: int | None
    rank: int | None


@dataclass(frozen=True)
class Labelled:
    raw: bytes                  # the file's bytes, kept as they are when rows are appended
    header: tuple[str, ...]     # () when there is no file (or nothing in it) yet
    keys: frozenset[str]        # title_key of every row


@dataclass(frozen=True)
class Appended:
    written: tuple[tuple[int, str, tuple[str, ...]], ...]  # (request row, title, labels) now in the file
    skipped: tuple[tuple[int, str], ...]                    # (request row, title) already there
    total: int                                              # rows in labelled.csv afterwards


def check_label_folder(folder: Path, model_dir: Path) -> Path:
    """The folder, or a UserError: it must exist, take new files, and not be (inside) the model folder."""
    from jobtitles.serve.backend import _writable

    flag = f"--label_folder {folder}"
    if not folder.is_dir():
        raise UserError(f"{flag}: no such folder; create it first (mkdir) or pass an existing folder")
    here, model = folder.resolve(), model_dir.resolve()
    if here == model or model in here.parents:
        raise UserError(f"{flag}: the model folder or a folder inside it (--model {model_dir}); labelled rows "
                        "are not part of a model: pass another folder, e.g. one beside the run")
    if not _writable(folder):
        raise UserError(f"{flag}: the folder is not writable; pass a folder this user can create files in")
    if (folder / LABELLED).is_dir():
        raise UserError(f"{flag}: {LABELLED} there is a folder; the view writes rows to a file of that name: "
                        "move that folder away")
    return folder


def _read_raw(path: Path) -> bytes | None:
    """The bytes of a file in the label folder (bounded), or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ApiError(409, "unreadable_file", f"{path.name}: cannot be read ({err.strerror}); check the "
                       "file's permissions in the label folder") from err
    if len(raw) > MAX_FILE_BYTES:
        raise ApiError(409, "file_too_large", f"{path.name}: over {MAX_FILE_BYTES:,} bytes, more than the "
                       "labelling view reads; split it or make a smaller one (e.g. jobtitles suggest --n 200)")
    return raw


def _records(raw: bytes, name: str, delimiter: str) -> list[list[str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        row = 1 + raw.count(b"\n", 0, err.start)
        raise ApiError(409, "invalid_file", f"{name}: row {row} is not valid UTF-8 (byte 0x{raw[err.start]:02x}); "
                       "re-save the file as UTF-8") from err
    try:
        return [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    except csv.Error as err:
        raise ApiError(409, "invalid_file", f"{name}: malformed CSV ({err}); check its quoting") from err


def _whole_number(cell: str, name: str, row: int, column: str) -> int | None:
    text = unescape_cell(cell).strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(409, "invalid_suggestions", f"{name}: row {row}: {column} is {shown(text, 40)!r}; expected a "
                       "whole number: re-make the file with jobtitles suggest") from None


def read_suggestions(folder: Path, schema: TrainingSchema) -> list[Suggestion] | None:
    """The rows of DIR/suggestions.csv in file order, blank titles left out; None when there is no file."""
    raw = _read_raw(folder / SUGGESTIONS)
    if raw is None:
        return None
    records = _records(raw, SUGGESTIONS, schema.delimiter)
    if not records:
        return []
    header = [h.strip() for h in records[0]]
    if schema.text_column not in header:
        expected = schema.delimiter.join([*schema.header(1), *EXTRA_COLUMNS])
        raise ApiError(409, "invalid_suggestions", f"{SUGGESTIONS}: no '{schema.text_column}' column (found "
                       f"{shown(header, 120)}); expected {expected}: re-make it with jobtitles suggest")
    at = {name: header.index(name) for name in (schema.text_column, *EXTRA_COLUMNS) if name in header}

    def cell(cells: list[str], name: str) -> str:
        i = at.get(name)
        return cells[i] if i is not None and i < len(cells) else ""

    out = []
    for row, cells in enumerate(records[1:], start=2):
        title = " ".join(cell(cells, schema.text_column).split())  # titles are written verbatim
        if not title:
            continue
        suggested = split_labels(unescape_cell(cell(cells, "suggested_labels")).strip())
        out.append(Suggestion(title, tuple(suggested) or None, unescape_cell(cell(cells, "reason")).strip(),
                              _whole_number(cell(cells, "pool_count"), SUGGESTIONS, row, "pool_count"),
                              _whole_number(cell(cells, "rank"), SUGGESTIONS, row, "rank")))
    return out


def read_labelled(folder: Path, schema: TrainingSchema) -> Labelled:
    """DIR/labelled.csv: its bytes, header and titles; a header that is not the schema's is refused."""
    raw = _read_raw(folder / LABELLED) or b""
    records = _records(raw, LABELLED, schema.delimiter)
    if not records:
        return Labelled(b"", (), frozenset())
    header = tuple(h.strip() for h in records[0])
    if len(header) < 2 or list(header) != schema.header(len(header) - 1):
        found, expected = shown(schema.delimiter.join(header), 120), schema.delimiter.join(schema.header(2))
        raise ApiError(409, "labelled_header", f"{LABELLED}: the header is {found!r}; expected the model's training "
                       f"layout {expected!r} (the title column, then label columns): fix the header, or move the "
                       "file away to start a new one")
    return Labelled(raw, header, frozenset(title_key(r[0]) for r in records[1:] if r and r[0].strip()))


def _rows_bytes(rows: Sequence[list[str]], delimiter: str, newline: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return buf.getvalue().encode("utf-8")


class LabelStore:
    """DIR/labelled.csv for one server: reads, and appends under one lock (one server per label folder)."""

    def __init__(self, folder: Path, schema: TrainingSchema) -> None:
        self.folder, self.schema = folder, schema
        self.path = folder / LABELLED
        self.shown = f"{folder.resolve().name or '.'}/{LABELLED}"  # the folder's own name: no server path
        self._lock = threading.Lock()

    def append(self, rows: Sequence[tuple[int, str, tuple[str, ...]]]) -> Appended:
        """Append the rows whose titles are not in the file yet (nor earlier in `rows`); answer which were."""
        with self._lock:
            current = read_labelled(self.folder, self.schema)
            seen, fresh, skipped = set(current.keys), [], []
            for index, title, labels in rows:
                key = title_key(title)
                (skipped.append((index, title)) if key in seen else fresh.append((index, title, labels)))
                seen.add(key)
            total = len(current.keys) + len(fresh)  # keys: distinct titles, which is what the file holds
            if fresh:
                self._write(current, fresh)
            return Appended(tuple(fresh), tuple(skipped), total)

    def _write(self, current: Labelled, fresh: list[tuple[int, str, tuple[str, ...]]]) -> None:
        schema = self.schema
        n = len(current.header) - 1 if current.header else schema.columns_needed([lab for _, _, lab in fresh])
        lines = [] if current.header else [schema.header(n)]
        for index, title, labels in fresh:
            cells = schema.cells(labels, n)
            if len(cells) > n:
                raise ApiError(409, "too_many_labels", f"rows[{index}].labels: {len(cells)} label columns needed, "
                               f"{LABELLED} has {n}; add '{schema.label_prefix} {len(cells)}' to its header (and a "
                               "field to each row) or choose fewer labels", f"rows[{index}].labels")
            lines.append([title, *cells])
        newline = "\r\n" if b"\r\n" in current.raw[:current.raw.find(b"\n") + 1] else "\n"
        old = current.raw if not current.raw or current.raw.endswith((b"\n", b"\r")) else current.raw + newline.encode()
        try:
            write_bytes(self.path, old + _rows_bytes(lines, schema.delimiter, newline))
        except OSError as err:
            err.filename = self.shown
            status = 507 if err.errno in (errno.ENOSPC, errno.EDQUOT) else 500
            raise ApiError(status, "write_failed", f"nothing written: {os_error_text(err)}") from err
