"""What changed in the data since the finished run a retrain with --overwrite replaces: rows added, removed and
relabelled, compared by title. The earlier run's oof_predictions.csv holds every title it trained on with its
gold labels; it is read (streamed) before the run's files are removed, and only a digest of it is kept."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from jobtitles.core.data import _norm  # the loader's own title key: its duplicates and conflicts meet the same way
from jobtitles.core.io_utils import read_json
from jobtitles.core.labels import split_labels
from jobtitles.core.log import warn
from jobtitles.core.spreadsheet import unescape_cell
from jobtitles.core.titles import MAX_TITLE_CHARS
from jobtitles.train.run_folder import RUN_INFO

OOF_FILE = "oof_predictions.csv"
OOF_HEADER = ["row", "title", "gold", "predicted", "correct"]  # reporting.run_files.write_run_files
# The earlier file is read only up to a few times this run's rows (and titles no longer than the loader keeps):
# its digest then costs about what the data already in memory does, whatever the folder holds.
ROWS_FACTOR, ROWS_SLACK = 4, 100_000
FIELDS = ("rows", "added", "removed", "relabelled", "finished_at", "csv_sha256")


@dataclass(frozen=True)
class Digest:
    """Per normalised title, how many rows carry it and the label sets they give it."""

    rows: int
    titles: dict[str, tuple[int, frozenset[frozenset[str]]]]


@dataclass(frozen=True)
class PreviousRun:
    """The finished run of this folder that this run replaced, and how the data changed since (run_info.json
    `previous_run`)."""

    rows: int  # usable rows of the earlier run
    added: int  # rows of this run whose title the earlier run did not have
    removed: int  # rows of the earlier run whose title this run does not have
    relabelled: int  # titles in both whose label sets differ
    finished_at: str | None
    csv_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> "PreviousRun | None":
        """run_info.json's `previous_run`, or None when absent or not of this shape."""
        if not isinstance(value, dict) or set(value) != set(FIELDS):
            return None
        counts = [value[k] for k in FIELDS[:4]]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            return None
        return cls(*counts, _time(value["finished_at"]), _sha(value["csv_sha256"]))

    def earlier(self) -> str:
        return f"{self.rows:,} rows, finished {self.finished_at or 'at an unrecorded time'}"

    def console_line(self, n_rows: int) -> str:
        return (f"data: {n_rows:,} usable rows, {self.added:,} added since the previous run of this folder "
                f"({self.earlier()}), {self.removed:,} removed, {self.relabelled:,} relabelled")

    def report_line(self) -> str:
        sha = f", CSV SHA-256 `{self.csv_sha256[:12]}…`" if self.csv_sha256 else ""
        return (f"Since the previous run of this folder ({self.earlier()}{sha}): {self.added:,} rows added, "
                f"{self.removed:,} removed, {self.relabelled:,} relabelled.")


def digest(titles: Iterable[str], label_sets: Iterable[Iterable[str]]) -> Digest:
    return _digest(zip(titles, label_sets))


def _digest(pairs: Iterable[tuple[str, Iterable[str]]]) -> Digest:
    sets: dict[str, set[frozenset[str]]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for title, labels in pairs:
        key = _norm(title)
        counts[key] += 1
        sets[key].add(frozenset(labels))
    return Digest(sum(counts.values()), {k: (counts[k], frozenset(v)) for k, v in sets.items()})


def compare(old: Digest, new: Digest) -> tuple[int, int, int]:
    """(added, removed, relabelled): rows of `new` whose title `old` lacks, rows of `old` whose title `new`
    lacks, titles in both with another set of label sets."""
    added = sum(n for key, (n, _) in new.titles.items() if key not in old.titles)
    removed = sum(n for key, (n, _) in old.titles.items() if key not in new.titles)
    relabelled = sum(1 for key, (_, sets) in new.titles.items() if key in old.titles and old.titles[key][1] != sets)
    return added, removed, relabelled


def read_oof_digest(path: Path, max_rows: int) -> Digest:
    """The digest of a run's oof_predictions.csv, streamed; ValueError naming what is wrong when the file is not
    one this project wrote."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader, [])
        if header[:len(OOF_HEADER)] != OOF_HEADER:
            raise ValueError(f"its header starts {header[:len(OOF_HEADER)]}, expected {OOF_HEADER}")
        return _digest(_gold(reader, max_rows))


def _gold(reader, max_rows: int) -> Iterator[tuple[str, list[str]]]:
    """(title, gold labels) of each line of oof_predictions.csv after the header."""
    for line, rec in enumerate(reader, start=2):
        if line > max_rows + 1:
            raise ValueError(f"it has more than {max_rows:,} rows, far more than this run's data")
        if len(rec) < len(OOF_HEADER):
            raise ValueError(f"line {line} has {len(rec)} fields, expected at least {len(OOF_HEADER)}")
        title = unescape_cell(rec[1])
        if len(title) > MAX_TITLE_CHARS:
            raise ValueError(f"line {line}: a title of {len(title):,} characters, longer than any the loader keeps")
        yield title, split_labels(unescape_cell(rec[2]))


def previous_run(run_dir: Path, old_info: dict[str, Any], titles: list[str],
                 label_sets: list[list[str]]) -> PreviousRun | None:
    """How this run's usable rows differ from the finished run in `run_dir` (run_info.json `old_info`); None,
    with one warning where its files cannot be read or were not written by a run (a retrain never stops for
    this), and None without a word where the earlier run did not finish."""
    results, oof = run_dir / "cv_results.json", run_dir / OOF_FILE
    try:
        if not results.is_file() or read_json(results).get("complete") is not True:
            return None  # an earlier run that never finished: nothing to compare with
    except (OSError, ValueError, AttributeError) as err:
        return _skipped(results, f"{type(err).__name__}: {err}")
    try:
        old = read_oof_digest(oof, ROWS_FACTOR * len(titles) + ROWS_SLACK)
    except FileNotFoundError:
        return _skipped(oof, "it is missing")
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as err:
        return _skipped(oof, f"{type(err).__name__}: {err}")
    added, removed, relabelled = compare(old, digest(titles, label_sets))
    fingerprint = old_info.get("fingerprint")
    sha = fingerprint.get("csv_sha256") if isinstance(fingerprint, dict) else None
    return PreviousRun(old.rows, added, removed, relabelled, _time(old_info.get("finished_at")), _sha(sha))


def _time(value: Any) -> str | None:
    """An ISO time as run_folder.now_iso writes it, else None (the text goes into report.md as it is)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return value


def _sha(value: Any) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else None


def _skipped(path: Path, why: str) -> None:
    warn(f"{path}: cannot compare this run's data with the previous run of this folder ({why}); "
         "training goes on without it")
    return None


def recorded(run_dir: Path) -> PreviousRun | None:
    """The `previous_run` this run recorded in run_info.json when it started (a resumed run keeps it)."""
    try:
        info = read_json(run_dir / RUN_INFO)
    except (OSError, ValueError):
        return None
    return PreviousRun.from_json(info.get("previous_run")) if isinstance(info, dict) else None
