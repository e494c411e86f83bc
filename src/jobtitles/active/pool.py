"""The pool of unlabelled titles `jobtitles suggest` chooses from: a .csv/.tsv in the project's schema (label
columns optional), a .txt file (one title per line) or a Parquet file, read as distinct titles with how often
each occurs. Memory grows with the distinct titles only, and is bounded by `max_distinct`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from jobtitles.core.data import iter_titles
from jobtitles.core.errors import UserError
from jobtitles.core.titles import MAX_TITLE_CHARS, clean_title, is_blank

PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_HINT = 'pip install pyarrow (or the spark extra: pip install "jobtitles[spark]")'


@dataclass(frozen=True)
class PoolReading:
    """How to read a pool file (the flags of `jobtitles suggest`)."""
    text_column: str = "Title"
    label_prefix: str = "Column"
    delimiter: str = ";"
    encoding: str = "utf-8"
    max_distinct: int = 1_000_000


@dataclass(frozen=True)
class Pool:
    counts: dict[str, int]  # cleaned title -> rows of the pool holding it (first-seen order)
    rows: int  # rows with a title
    labelled_rows: int  # rows whose label columns are filled: already labelled, never suggested
    empty_rows: int


class RowCount:
    """Where iter_titles appends the numbers of skipped blank rows: only how many are kept, so a file of a
    million blank rows costs no memory (a list of their numbers would)."""

    def __init__(self) -> None:
        self.n = 0

    def append(self, _row: int) -> None:
        self.n += 1


def read_pool(path: Path, how: PoolReading) -> Pool:
    """The pool's distinct titles with their counts (a title as every prediction path cleans it)."""
    counts: Counter[str] = Counter()
    rows = labelled = 0
    empty = RowCount()
    for titles, golds in _chunks(path, how, empty):
        for i, title in enumerate(titles):
            if golds is not None and golds[i]:
                labelled += 1
                continue
            counts[clean_title(title)[0]] += 1
            rows += 1
        if len(counts) > how.max_distinct:
            raise UserError(f"{path}: more than {how.max_distinct:,} distinct titles; pass --max_distinct "
                            f"{how.max_distinct * 2} (memory grows with it) or sample the pool first")
    if not counts:
        raise UserError(f"{path}: no unlabelled titles ({labelled} rows already have labels); expected titles "
                        "with empty label columns, or a .txt file of titles")
    return Pool(dict(counts), rows, labelled, empty.n)


def _chunks(path: Path, how: PoolReading, empty: RowCount) -> Iterator[tuple[list[str], list | None]]:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        yield from _parquet_chunks(path, how.text_column, empty)
        return
    for titles, _, gold in iter_titles(path, text_column=how.text_column, label_prefix=how.label_prefix,
                                       delimiter=how.delimiter, encoding=how.encoding, empty_rows=empty,
                                       fix="flag"):
        yield titles, gold


def _parquet_chunks(path: Path, column: str, empty: RowCount) -> Iterator[tuple[list[str], None]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise UserError(f"{path}: reading Parquet needs pyarrow, which is not installed: {PARQUET_HINT}") from err
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path (--pool)")
    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own types for a damaged or foreign file
        raise UserError(f"{path}: not a readable Parquet file ({type(err).__name__}: {str(err)[:120]}); "
                        "check the file or convert it to .csv") from err
    names = file.schema_arrow.names
    if column not in names:
        raise UserError(f"{path}: no {column!r} column; found columns {names[:20]}; pass --text_column")
    if names.count(column) > 1:  # pyarrow's field(name) raises KeyError on a repeated name
        raise UserError(f"{path}: {names.count(column)} {column!r} columns; expected one: rename the others or "
                        "pass --text_column naming a column that occurs once")
    kind = file.schema_arrow.field(column).type
    if str(kind) not in ("string", "large_string"):
        raise UserError(f"{path}: column {column!r} holds {kind}, expected text (string)")
    check_sizes(path, file.metadata, column)
    for values in _values(path, file, column):
        titles = [" ".join(v.split()) for v in values if not is_blank(v)]
        empty.n += len(values) - len(titles)  # Parquet has no row numbers to report
        if titles:
            yield titles, None


def _values(path: Path, file, column: str) -> Iterator[list]:
    """The column's values, 10,000 rows at a time; a damaged page is one error line, not pyarrow's traceback."""
    from pyarrow import ArrowException

    batches = file.iter_batches(columns=[column], batch_size=10_000)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            values = batch.column(0).to_pylist()
        except (OSError, ValueError, ArrowException) as err:  # ArrowIOError is an OSError, ArrowInvalid a ValueError
            raise UserError(f"{path}: a damaged Parquet page ({type(err).__name__}: {str(err)[:120]}); check the "
                            "file or convert it to .csv") from err
        yield values


BYTES_PER_ROW = 4 * MAX_TITLE_CHARS + 16  # a cut title's worst-case UTF-8 size, its length prefix and slack
MAX_GROUP_BYTES = 2**30  # one row group's titles (a Spark pool's 128 MB row groups are a few hundred MB of text)


def check_sizes(path: Path, meta, column: str) -> None:
    """Compressed Parquet can hold a gigabyte of text in kilobytes. From the footer, before anything is
    decompressed: refuse a row group whose titles take more bytes than its rows' cut titles could, or more than
    MAX_GROUP_BYTES (the bound on one value, which a page decompresses whole). `meta`: a pyarrow FileMetaData."""
    leaf = [i for i in range(meta.num_columns) if meta.schema.column(i).path == column]
    if len(leaf) != 1:  # a top-level string column is one leaf; a nested one of the same dotted path is a clash
        raise UserError(f"{path}: {len(leaf)} Parquet columns at the path {column!r}; expected one: rename the "
                        "nested column or convert the file to .csv")
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        size = group.column(leaf[0]).total_uncompressed_size
        limit = min(BYTES_PER_ROW * group.num_rows + 2**20, MAX_GROUP_BYTES)
        if size > limit:
            raise UserError(f"{path}: row group {g} holds {size:,} bytes of titles for {group.num_rows:,} rows; "
                            f"expected at most {limit:,} (titles are cut to {MAX_TITLE_CHARS:,} characters): cut "
                            "the text column, write smaller row groups or convert the file to .csv")
