"""`jobtitles suggest` / `python -m jobtitles.suggest`: flags, checks before anything is read, the CSV."""

from __future__ import annotations

import argparse
import csv
import io
import os
from pathlib import Path

from jobtitles.active.pool import PoolReading
from jobtitles.active.suggest import Suggestion, SuggestArgs, suggest
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import write_text
from jobtitles.core.labels import join_labels
from jobtitles.core.log import logger
from jobtitles.core.spreadsheet import escape_cell
from jobtitles.core.training_schema import SUGGESTION_COLUMNS

EXTRA_COLUMNS = SUGGESTION_COLUMNS


class ArgParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"suggest: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="jobtitles suggest", description="Choose the titles of a pool most worth labelling next.")
    p.add_argument("--pool", required=True, help="Titles to choose from: .csv/.tsv (Title column; rows with labels "
                                                 "are skipped), .txt (one per line) or .parquet.")
    p.add_argument("--n", type=int, required=True, help="How many titles to suggest.")
    p.add_argument("--output", required=True, help="The .csv to write (training schema + suggested_labels, "
                                                   "reason, pool_count, rank).")
    p.add_argument("--model", help="Model folder written by train.py; leave out for a cold start.")
    p.add_argument("--train_file", action="append", default=[],
                   help="Titles never to suggest (repeatable; default: the run folder's oof_predictions.csv).")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"])
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--near_duplicate", type=float, default=0.9,
                   help="Character n-gram cosine from which two titles count as near-duplicates.")
    p.add_argument("--max_distinct", type=int, default=1_000_000, help="Refuse a pool with more distinct titles.")
    p.add_argument("--text_column", default="Title")
    p.add_argument("--label_column_prefix", default="Column")
    p.add_argument("--delimiter", default=";")
    p.add_argument("--encoding", default="utf-8")
    return p


def check_output(output: Path, inputs: list[Path]) -> None:
    """Before anything is read: a .csv name, never one of the inputs (a user's byte is never overwritten)."""
    if output.suffix.lower() != ".csv":
        raise UserError(f"--output {output}: expected a .csv file name")
    if output.is_dir():
        raise UserError(f"--output {output}: is a folder; give a file name such as {output / 'suggestions.csv'}")
    for path in inputs:
        same = output.exists() and path.exists() and os.path.samefile(output, path)
        if same or output.resolve() == path.resolve() or path.resolve() in output.resolve().parents:
            raise UserError(f"--output {output}: is an input ({path}); write the suggestions to a new file")


def reason_cell(text: str, delimiter: str) -> str:
    """The reason, spreadsheet-safe, on one line and without the delimiter (read as a space: "1 204 times" in a
    comma-delimited file): the training loader refuses a field that holds the delimiter twice."""
    return escape_cell(" ".join(text.replace(delimiter, " ").split()))


def labels_cell(labels: tuple[str, ...], delimiter: str) -> str:
    """The suggested labels joined as in every file the project writes, or empty where the joined text holds the
    delimiter twice ('|' itself, or labels with commas in a comma-delimited file): the loader would refuse it,
    and the labelling view pre-selects the model's own labels for an empty cell."""
    text = join_labels(list(labels))
    return escape_cell(text) if text.count(delimiter) < 2 else ""


def csv_text(suggestions: list[Suggestion], schema) -> str:
    buf = io.StringIO()
    d = schema.delimiter
    writer = csv.writer(buf, delimiter=d, lineterminator="\n")
    writer.writerow([*schema.header(schema.label_columns), *EXTRA_COLUMNS])
    for s in suggestions:
        # titles verbatim (formula-like ones and those holding the delimiter twice are never suggested), so the
        # filled file trains as it is
        writer.writerow([s.title, *[""] * schema.label_columns, labels_cell(s.suggested, d),
                         reason_cell(s.reason, d), s.pool_count, s.rank])
    return buf.getvalue()


def main(argv: list[str]) -> int:
    a = build_parser().parse_args(argv)
    model = Path(a.model) if a.model else None
    args = SuggestArgs(pool=Path(a.pool), n=a.n, model=model, train_files=tuple(Path(p) for p in a.train_file),
                       seed=a.seed, backend=a.backend, batch_size=a.batch_size, near_duplicate=a.near_duplicate,
                       reading=PoolReading(a.text_column, a.label_column_prefix, a.delimiter, a.encoding,
                                           a.max_distinct))
    if a.batch_size < 1 or a.max_distinct < 1:
        raise UserError(f"--batch_size and --max_distinct must be at least 1, found {a.batch_size}, {a.max_distinct}")
    output = Path(a.output)
    oof = [model.parent / "oof_predictions.csv"] if model and not args.train_files else []  # read unnamed
    check_output(output, [args.pool, *args.train_files, *([model] if model else []), *oof])
    suggestions, schema = suggest(args)
    write_text(output, csv_text(suggestions, schema))
    logger.info(f"wrote {len(suggestions)} titles to label to {output}: fill in the label columns and append the "
                "rows to the training file (the extra columns are ignored by train.py)")
    return 0
