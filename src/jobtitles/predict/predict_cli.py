"""predict.py: label titles from the command line, a .csv/.txt file or stdin, with a saved model folder.

Files are read, predicted and written in chunks, so a large file streams and an interrupted run keeps what it
finished. When the input CSV has label columns, the mistakes are counted and listed (like `check_predictions`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import disk_errors
from jobtitles.core.labels import join_labels
from jobtitles.core.spreadsheet import escape_cell



class ArgParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"predict.py: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="predict.py", description="Predict job-title labels with a trained model.")
    p.add_argument("titles", nargs="*", help="Titles to label (quote each one).")
    p.add_argument("--model", required=True, help="Model folder written by train.py (outputs/<run>/model).")
    p.add_argument("--input", help="A .csv (Title column, optional label columns) or .txt file; '-' for stdin.")
    p.add_argument("--output", help="Write predictions to .csv (semicolon) or .jsonl instead of the screen.")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"],
                   help="auto (default): the folder's int8 export when it passed its parity check, else torch.")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--chunk_size", type=int, default=10000, help="Titles per read/predict/write chunk.")
    p.add_argument("--cache_titles", type=int, default=100000,
                   help="Answers of this many recent distinct titles are reused across chunks (0: off).")
    p.add_argument("--threshold", type=float, default=None, help="Override the saved per-label thresholds.")
    p.add_argument("--text_column", default="Title")
    p.add_argument("--label_column_prefix", default="Column")
    p.add_argument("--delimiter", default=";")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--max_errors_shown", type=int, default=50)
    return p


def check_args(args: argparse.Namespace) -> None:
    """Every flag checked before the model is loaded or any file is opened."""
    for key, low in (("batch_size", 1), ("chunk_size", 1), ("max_errors_shown", 0), ("cache_titles", 0)):
        if getattr(args, key) < low:
            raise UserError(f"--{key} must be at least {low}, found {getattr(args, key)}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:  # also false for nan
        raise UserError(f"--threshold must be between 0 and 1 (exclusive), found {args.threshold}")
    if args.input is not None and args.titles:
        raise UserError(f"predict.py: got {len(args.titles)} titles as arguments and --input {args.input}; "
                        "give one or the other")
    if args.output is not None:
        out = Path(args.output)
        if out.is_dir():
            raise UserError(f"--output {out}: is a folder; give a file name ending in .csv or .jsonl")
        if args.input not in (None, "-") and Path(args.input).exists() and out.exists() and out.samefile(args.input):
            raise UserError(f"--output {out} is the --input file; give another file name (the input would be lost)")


def input_chunks(args: argparse.Namespace, empty_rows: list[int]):
    """(titles, rows, gold or None) chunks from the command line, stdin or a file (both streamed)."""
    from jobtitles.core.data import iter_lines, iter_titles

    if args.input == "-" or (args.input is None and not args.titles and not sys.stdin.isatty()):
        yield from iter_lines(sys.stdin, "stdin", args.chunk_size, empty_rows)
    elif args.input:
        yield from iter_titles(Path(args.input), args.chunk_size, text_column=args.text_column,
                               label_prefix=args.label_column_prefix, delimiter=args.delimiter,
                               encoding=args.encoding, empty_rows=empty_rows)
    elif not args.titles:
        raise UserError("predict.py: give titles as arguments, or --input FILE, or pipe titles on stdin")
    else:
        yield from iter_lines(args.titles, "command line", max(len(args.titles), 1), empty_rows)


class Writer:
    """Streams predictions to .csv / .jsonl or prints them. A file is written under `<output>.partial`
    (flushed per chunk) and renamed to `<output>` only when every row is written, so an existing file is
    never emptied or half-replaced; an interrupted run leaves the .partial file with what it finished."""

    def __init__(self, path: str | None, labels: list[str]) -> None:
        self.path, self.labels = path, labels
        self.kind = "screen" if path is None else Path(path).suffix.lower().lstrip(".")
        if self.kind not in ("screen", "csv", "jsonl"):
            raise UserError(f"--output {path}: expected a .csv or .jsonl file name")
        self.fh: TextIO | None = None
        self.partial = Path(f"{path}.partial") if path is not None else None
        self.rows = 0

    def open(self) -> None:
        if self.partial is None:
            return
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        # A fresh file, never an existing name: a `.partial` planted as a link to another file (its name is
        # predictable) would otherwise receive the predictions. The stale name itself is only unlinked.
        if self.partial.is_symlink() or self.partial.exists():
            self.partial.unlink()
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        self.fh = open(fd, "w", encoding="utf-8", newline="")
        if self.kind == "csv":
            self.csv = csv.writer(self.fh, delimiter=";", lineterminator="\n")
            self.csv.writerow(["row", "title", "predicted", *[f"score:{lab}" for lab in self.labels]])
            # a row's cells after its number, written once per distinct title by the same csv dialect
            self.line = io.StringIO()
            self.line_writer = csv.writer(self.line, delimiter=";", lineterminator="\n")

    def _named(self):
        """A failed write (a full disk) names the output file in its one line, not 'a file'."""
        return disk_errors(Path(self.path if self.path is not None else "<standard output>"))

    def write(self, rows: list[int], titles: list[str], scores: np.ndarray, pred: np.ndarray) -> None:
        with self._named():
            self._write(rows, titles, scores, pred)

    def _write(self, rows: list[int], titles: list[str], scores: np.ndarray, pred: np.ndarray) -> None:
        if self.fh is None and self.partial is not None:
            self.open()  # only once the first chunk is read, checked and predicted
        # A chunk repeats its titles as the input does: each distinct title's answer is formatted once (equal
        # titles have equal answers), from Python lists of those rows only (NumPy scalars format slowly one by
        # one, and a list of every row's scores costs as much as the formatting it saves)
        first: dict[str, int] = {}
        for i, t in enumerate(titles):
            first.setdefault(t, i)
        at = list(first.values())
        done = {t: self._cells(t, s, p) for t, s, p in
                zip(first, scores[at].tolist(), pred[at].astype(bool).tolist())}
        if self.kind == "screen":
            for t in titles:
                print(done[t])
        elif self.kind == "csv":  # a row number needs no quoting: the csv module wrote the rest
            self.fh.write("".join([f"{r};{done[t]}" for r, t in zip(rows, titles)]))
        else:
            self.fh.write("".join([f'{{"row": {r}, {done[t]}\n' for r, t in zip(rows, titles)]))
        self.rows += len(rows)
        (self.fh or sys.stdout).flush()  # a full disk fails here, named, not in Python's exit flush

    def _cells(self, title: str, scores: list[float], on: list[bool]):
        """One title's output after its row number: a screen line, CSV cells, or the rest of a JSON object."""
        names = [lab for lab, hit in zip(self.labels, on) if hit]
        if self.kind == "screen":
            return f"{title}\t" + ", ".join(f"{lab} ({v:.3f})" for lab, v, hit in zip(self.labels, scores, on) if hit)
        if self.kind == "csv":
            # text cells spreadsheet-safe (a title "=HYPERLINK(...)" stays text); the JSONL keeps them verbatim
            self.line.seek(0)
            self.line.truncate()
            self.line_writer.writerow([escape_cell(title), escape_cell(join_labels(names)),
                                       *[f"{v:.4f}" for v in scores]])
            return self.line.getvalue()
        rest = json.dumps({"title": title, "labels": names,
                           "scores": {lab: round(v, 4) for lab, v in zip(self.labels, scores)}}, ensure_ascii=False)
        return rest[1:]  # after '{"row": N, '

    def commit(self) -> None:
        if self.fh is not None:
            with self._named():
                self.fh.close()  # writes the last buffered rows: a full disk can fail here too
                os.replace(self.partial, self.path)

    def abort(self, interrupted: bool) -> None:
        """Keep the finished rows of an interrupted run; drop the partial file of a failed one."""
        if self.fh is None:
            return
        with contextlib.suppress(OSError):  # the full disk that failed the run fails the last flush again
            self.fh.close()
        if interrupted:
            print(f"kept {self.rows} predictions in {self.partial}", file=sys.stderr)
        else:
            self.partial.unlink(missing_ok=True)


def expected_rows(source: str | None) -> int | None:
    """The rows a .csv/.tsv/.txt input will give, for the progress bar's total: its line count (a quick binary
    pass), less the header; None for standard input and for encodings whose line break is not one byte."""
    if not source or source == "-" or not Path(source).is_file():
        return None
    lines, last = 0, b"\n"
    with open(source, "rb") as fh:
        head = fh.read(4)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16/32 byte-order marks
            return None
        fh.seek(0)
        for block in iter(lambda: fh.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(0, lines - (Path(source).suffix.lower() in (".csv", ".tsv")))


def check_predictions(labels: list[str], titles, rows, gold, pred: np.ndarray, limit: int) -> int:
    """Count and list the titles whose predicted label set differs from the file's labels."""
    wrong = []
    for r, t, g, p in zip(rows, titles, gold, pred):
        got = [labels[j] for j in np.flatnonzero(p)]
        if set(got) != set(g):
            wrong.append((r, t, g, got))
    print(f"\n{len(wrong)} of {len(titles)} predictions differ from the file's labels "
          f"(subset accuracy {1 - len(wrong) / max(len(titles), 1):.4f})", file=sys.stderr)
    for r, t, g, got in wrong[:limit]:
        print(f"  row {r}: {t!r}: file {g or ['(none)']}, predicted {got}", file=sys.stderr)
    if len(wrong) > limit:
        print(f"  ... and {len(wrong) - limit} more", file=sys.stderr)
    return len(wrong)


@dataclass
class Counts:
    """What a prediction run saw: rows predicted, distinct model inputs scored, skipped empty rows."""

    rows: int = 0
    distinct: int = 0
    empty_rows: list[int] = field(default_factory=list)


def predict_chunks(args: argparse.Namespace, clf, writer: "Writer", counts: Counts) -> list[tuple]:
    """Read, score and write chunk by chunk under a progress bar (total: the file's row count); returns
    (titles, rows, gold, pred) of the chunks that carry labels, for the check against them."""
    from tqdm.auto import tqdm

    checked: list[tuple] = []
    bar = tqdm(total=expected_rows(args.input), unit="title", disable=args.output is None, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for titles, rows, gold in input_chunks(args, counts.empty_rows):
            read = counts.rows + len(counts.empty_rows)  # rows of the file before this chunk, skipped ones too

            def advance(done: int, of: int, base: int = read, n: int = len(titles)) -> None:
                bar.update(int(base + n * done / of) - bar.n)  # within a chunk: by distinct inputs scored

            scores = clf.score_titles(titles, on_batch=advance)[0]
            pred = clf.decide(scores)
            writer.write(rows, titles, scores, pred)  # flushed: an interrupted run keeps finished chunks
            if gold is not None:
                checked.append((titles, rows, gold, pred))
            counts.rows += len(titles)
            counts.distinct += clf.last_counts[1]
            bar.update(counts.rows + len(counts.empty_rows) - bar.n)
        writer.commit()
    except BaseException as err:
        writer.abort(interrupted=isinstance(err, KeyboardInterrupt))
        raise
    finally:
        bar.close()
    return checked


def main(argv: list[str]) -> int:
    from jobtitles.core.dedupe import RecentTitles
    from jobtitles.predict.backends import AUTO, resolve_backend
    from jobtitles.predict.inference import TitleClassifier

    args = build_parser().parse_args(argv)
    check_args(args)
    # answers of recent titles across chunks: a file's frequent titles are scored once, not once per chunk
    cache = RecentTitles(args.cache_titles) if args.cache_titles else None
    backend, why = resolve_backend(Path(args.model), args.backend)
    clf = TitleClassifier(args.model, backend=backend, batch_size=args.batch_size, threshold=args.threshold,
                          cache=cache)
    if args.backend == AUTO:  # once the folder loaded: a broken one is still a single error line
        print(f"backend {backend}: {why}", file=sys.stderr)
    counts, start = Counts(), time.perf_counter()
    checked = predict_chunks(args, clf, Writer(args.output, clf.labels), counts)
    if counts.empty_rows:
        empty_rows = counts.empty_rows
        shown = ", ".join(map(str, empty_rows[:8])) + (f" and {len(empty_rows) - 8} more" if len(empty_rows) > 8 else "")
        print(f"note: skipped {len(empty_rows)} empty titles (rows {shown})", file=sys.stderr)
    if args.output:
        wall = time.perf_counter() - start
        rate = counts.rows / max(wall, 1e-9)
        print(f"wrote {counts.rows} predictions to {args.output} in {wall:.1f} s ({rate:,.0f} titles/s); "
              f"{counts.distinct} distinct model inputs scored"
              + (f" (a cache of the {args.cache_titles} most recent titles answered the rest)" if cache else
                 f" (each once per chunk of {args.chunk_size})"),
              file=sys.stderr)
    if checked:
        check_file_labels(clf, checked, args.max_errors_shown)
    return 0


def check_file_labels(clf, checked: list[tuple], limit: int) -> None:
    titles = [t for c in checked for t in c[0]]
    rows = [r for c in checked for r in c[1]]
    # the file's labels as training saw them: a row without one carries the empty label
    empty = [clf.exclusive_label] if clf.exclusive_label else []
    gold = [g or empty for c in checked for g in c[2]]
    unknown = sorted({g for gs in gold for g in gs} - set(clf.labels))
    if unknown:
        print(f"note: the file has labels the model does not know: {unknown}", file=sys.stderr)
    check_predictions(clf.labels, titles, rows, gold, np.concatenate([c[3] for c in checked]), limit)
