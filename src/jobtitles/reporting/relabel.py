"""Write a corrected copy of a run's training CSV from the label-issue suggestions a user accepted.

    python -m jobtitles.relabel --run outputs/<run> --accept rows.txt [--output corrected.csv]

The copy keeps the user's schema byte for byte where it can: same header, delimiter, encoding, BOM and line
endings; every row not accepted is copied unchanged; an accepted row gets the suggested labels in its label
cells. The original file is never opened for writing.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import functools
import io
import itertools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from jobtitles.core.data import check_label_name, find_columns, read_text
from jobtitles.core.errors import UserError, cli_entry
from jobtitles.core.io_utils import sha256_file, write_bytes
from jobtitles.reporting.label_issues import COLUMNS, FILENAME
from jobtitles.core.labels import split_labels
from jobtitles.core.spreadsheet import unescape_cell

DEFAULT_OUTPUT = "corrected.csv"  # inside the run folder; the training schema train.py reads: never spreadsheet-escaped
RUN_INFO = "run_info.json"  # (jobtitles.train.run_folder.RUN_INFO; not imported: it pulls in transformers)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # the line breaks csv (newline="") knows, kept
ROW_NUMBER = re.compile(r"[0-9]{1,12}")  # ASCII digits only ('²'.isdigit() is true); 12 digits: no int() blow-up
MAX_RUN_INFO_BYTES = 16 << 20  # train.py writes a few KB
MAX_ACCEPT_BYTES = 64 << 20  # some 8 million row numbers
MAX_LINE_BYTES = 1 << 20  # far above any row number, title or label list; bounds what one line may hold in memory
DAMAGED = "the run folder is damaged: restore run_info.json from a copy or rerun train.py"
ISSUES_FIX = (f"restore the {FILENAME} train.py wrote (re-saving it in a spreadsheet changes its delimiter or "
              "columns) or rerun train.py; list accepted rows in the --accept file")


@dataclass
class RunInputs:
    train_file: Path
    sha256: str
    delimiter: str
    encoding: str
    text_column: str
    label_prefix: str
    empty_label: str | None


@dataclass
class RelabelResult:
    output: Path
    changed: list[int]  # rows whose label cells were rewritten
    unchanged: list[int] = field(default_factory=list)  # accepted, but the suggestion equals the given labels
    added_columns: list[str] = field(default_factory=list)


def _text_key(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _text_encoding(v: Any) -> bool:
    try:
        "".encode(v)  # LookupError for unknown names and for codecs that are not text encodings (rot13)
    except (LookupError, TypeError, ValueError):
        return False
    return True


# run_info.json keys relabel reads: (check, what is expected)
RUN_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train_file": (_text_key, "a path string"),
    "fingerprint.csv_sha256": (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
                               "a SHA-256 of 64 hex digits"),
    "config.project.delimiter": (lambda v: isinstance(v, str) and len(v) == 1 and v not in "\"\r\n",
                                 "one character other than a quote or line break"),
    "config.project.encoding": (_text_encoding, "a text encoding name such as \"utf-8\""),
    "config.project.text_column": (_text_key, "a column name string"),
    "config.project.label_column_prefix": (_text_key, "a column name prefix string"),
    "config.project.empty_label": (lambda v: v is None or isinstance(v, str), "a label name or null"),
}


def _excerpt(text: str, width: int = 60) -> str:
    """repr of at most `width` characters: a hostile cell never makes a message longer than a line."""
    return repr(text) if len(text) <= width else repr(text[:width]) + f"... ({len(text):,} characters)"


def _json_found(value: Any, width: int = 60) -> str:
    """A JSON value as found in the file: its kind for an object or a list, else its JSON text, cut."""
    kinds = {dict: "an object", list: "a list"}
    text = json.dumps(value)  # ASCII: control characters escaped, one line
    return kinds.get(type(value)) or (text if len(text) <= width else text[:width] + "...")


@dataclass(frozen=True)
class InputFile:
    """A file relabel reads and what it should hold; every complaint about it is one line of one form:
    `<path>: expected <what>, found <what>; <fix>`."""

    path: Path
    expected: str
    fix: str
    decode_fix: str = "re-save it as UTF-8"

    def error(self, found: str, fix: str | None = None, expected: str | None = None) -> UserError:
        return UserError(f"{self.path}: expected {expected or self.expected}, found {found}; {fix or self.fix}")

    def check(self, missing_fix: str, limit: int = 0) -> None:
        """A regular file (not a folder, nor a pipe or device that would block or never end), at most `limit`
        bytes (0: any size)."""
        if not self.path.is_file():
            if not self.path.exists():
                raise self.error(f"no {self.path.name}", missing_fix)
            raise self.error("a folder" if self.path.is_dir() else "a device, pipe or socket", "pass a regular file")
        size = self.path.stat().st_size
        if limit and size > limit:
            raise self.error(f"{size / 2**20:,.0f} MB", expected=f"{self.expected}, at most {limit >> 20} MB")

    def text(self) -> str:
        """The whole file as UTF-8 (a BOM tolerated)."""
        with self._open() as fh:
            return self._decode(fh.read(), 1)

    def lines(self) -> Iterator[str]:
        """The file's lines, decoded one at a time (so a large file is never held whole), each bounded."""
        with self._open() as fh:
            for n in itertools.count(1):
                line = fh.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                if len(line) > MAX_LINE_BYTES:
                    raise self.error(f"line {n} longer than {MAX_LINE_BYTES >> 20} MB",
                                     expected=f"{self.expected}, lines of at most {MAX_LINE_BYTES >> 20} MB")
                yield self._decode(line, n)

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")
        except OSError as err:  # not errors.os_error_text: its fixes are for writing
            raise self.error(f"a file that cannot be read ({err.strerror})", "check its permissions") from None

    def _decode(self, raw: bytes, first_line: int) -> str:
        if first_line == 1 and raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise self.error("UTF-16 (it starts with a UTF-16 byte-order mark)", expected="UTF-8 text",
                             fix="re-save it as UTF-8 (PowerShell: Set-Content -Encoding utf8)")
        try:
            return raw.decode("utf-8-sig" if first_line == 1 else "utf-8")
        except UnicodeDecodeError as err:
            line = first_line + raw.count(b"\n", 0, err.start)
            raise self.error(f"byte 0x{raw[err.start]:02x} on line {line}", expected="UTF-8 text",
                             fix=self.decode_fix) from None


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        found = "a file" if run_dir.is_file() else "nothing" if not run_dir.exists() else "a device, pipe or socket"
        raise UserError(f"{run_dir}: expected a run folder written by train.py, found {found}; pass the folder "
                        "train.py wrote (--run outputs/<run>), not a file in it")


def _load_run_info(run_dir: Path) -> tuple[InputFile, dict]:
    f = InputFile(run_dir / RUN_INFO, f"the {RUN_INFO} train.py writes in every run folder", DAMAGED, DAMAGED)
    f.check(f"is {run_dir} a run folder? pass the folder train.py wrote (--run outputs/<run>)", MAX_RUN_INFO_BYTES)
    text = f.text()
    if not text.strip():
        raise f.error("an empty file", expected="JSON")
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise f.error(f"invalid JSON ({err})", expected="JSON") from None
    except RecursionError:
        raise f.error("JSON nested too deeply to read", expected="JSON") from None
    if not isinstance(info, dict):
        raise f.error(_json_found(info), expected="a JSON object")
    return f, info


def _run_key(f: InputFile, info: dict, key: str) -> Any:
    """The value at a dotted key of run_info.json, checked against RUN_KEYS."""
    check, what = RUN_KEYS[key]
    value: Any = info
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(value, dict):
            raise f.error(_json_found(value), expected=f"{'.'.join(parts[:i])!r} to be an object")
        if part not in value:
            raise f.error(f"no {'.'.join(parts[:i + 1])!r}", expected=f"a key {key!r} holding {what}")
        value = value[part]
    if not check(value):
        raise f.error(_json_found(value), expected=f"{key!r} to be {what}")
    return value


def read_run(run_dir: Path, train_file: Path | None = None) -> RunInputs:
    _check_run_dir(run_dir)
    f, info = _load_run_info(run_dir)
    get = functools.partial(_run_key, f, info)
    recorded = get("train_file")  # checked even with --train_file: a run_info.json without it is not train.py's
    inputs = RunInputs(Path(train_file) if train_file else Path(recorded), get("fingerprint.csv_sha256"),
                       get("config.project.delimiter"), get("config.project.encoding"),
                       get("config.project.text_column"), get("config.project.label_column_prefix"),
                       get("config.project.empty_label"))
    train = InputFile(inputs.train_file, f"the training CSV of {run_dir}", DAMAGED)
    train.check("paths in run_info.json are relative to the folder train.py ran in: run from there or pass "
                "--train_file <path>")
    found = sha256_file(inputs.train_file)
    if found != inputs.sha256:
        raise UserError(f"{inputs.train_file}: changed since the run (SHA-256 {found[:12]}..., the run recorded "
                        f"{inputs.sha256[:12]}...); its row numbers may no longer match label_issues.csv: retrain "
                        "on the current file first")
    return inputs


def read_accepted(path: Path) -> list[int]:
    """Row numbers, one per line; '#' starts a comment; blank lines are skipped; a row given twice counts once."""
    f = InputFile(path, "a text file with one label_issues.csv row number per line",
                  "write one row number per line ('#' starts a comment)")
    f.check("check the --accept path", MAX_ACCEPT_BYTES)
    rows: dict[int, None] = {}
    for n, line in enumerate(f.lines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not ROW_NUMBER.fullmatch(text):
            raise UserError(f"{path}: line {n}: expected one row number (as in label_issues.csv), found "
                            f"{_excerpt(text)}; {f.fix}")
        rows.setdefault(int(text), None)
    if not rows:
        raise f.error("no row numbers", "list the label_issues.csv rows whose suggestion you accept, one per line")
    return list(rows)


def read_suggestions(run_dir: Path, accepted: list[int]) -> dict[int, tuple[str, list[str]]]:
    """(title, suggested labels) of the accepted rows that label_issues.csv lists. The file is streamed (it has a
    line per training row): only its row numbers and the accepted rows are kept."""
    f = InputFile(run_dir / FILENAME, f"the {FILENAME} train.py writes (columns {';'.join(COLUMNS)})", ISSUES_FIX,
                  ISSUES_FIX)
    f.check("the run had `label_issues: false` or predates it: rerun train.py with label_issues on")
    reader = csv.reader(f.lines(), delimiter=";")
    wanted, seen = set(accepted), {}
    out: dict[int, tuple[str, list[str]]] = {}
    try:
        header = [h.strip() for h in next(reader, [])]
        if not {"row", "title", "suggested"} <= set(header):
            raise f.error(f"the columns {_excerpt(';'.join(header))}" if header else "an empty file")
        i_row, i_title, i_sugg = (header.index(c) for c in ("row", "title", "suggested"))
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            cells += [""] * (len(header) - len(cells))
            text = cells[i_row].strip()
            if not ROW_NUMBER.fullmatch(text):
                raise f.error(f"{_excerpt(text)} on line {reader.line_num}", expected="a row number in column 'row'")
            row = int(text)
            if row in seen:
                raise f.error(f"row {row} on lines {seen[row]} and {reader.line_num}", expected="each row once")
            seen[row] = reader.line_num
            if row in wanted:
                # label_issues.csv's text cells are spreadsheet-escaped ("'=1+1"): compared as the titles they were
                out[row] = (unescape_cell(cells[i_title]), split_labels(unescape_cell(cells[i_sugg])))
    except csv.Error as err:
        raise f.error(f"malformed CSV on line {reader.line_num} ({err})") from None
    return out


def _records(text: str, delimiter: str) -> dict[int, tuple[str, list[str]]]:
    """row -> (raw text, cells) per CSV record, numbered like jobtitles.core.data.read_rows: the row of the record's
    first line (header = row 1). Raw texts in order rebuild `text` exactly."""
    lines = _LINE.findall(text)
    reader = csv.reader(iter(lines), delimiter=delimiter)
    out, used = {}, 0
    for cells in reader:
        out[used + 1] = ("".join(lines[used:reader.line_num]), cells)
        used = reader.line_num
    return out


def _ending(raw: str) -> str:
    return "\r\n" if raw.endswith("\r\n") else raw[-1] if raw and raw[-1] in "\r\n" else ""


def _place(cells: list[str], label_cols: list[int], labels: list[str]) -> list[str]:
    """New cells with `labels` in the label columns: a label already in a column stays there (so a
    seniority/department layout survives a swap); the other labels fill the freed columns left to right."""
    out = list(cells) + [""] * (max(label_cols) + 1 - len(cells))
    left = list(labels)
    stays = set()
    for i in label_cols:
        if out[i].strip() in left:
            left.remove(out[i].strip())
            stays.add(i)
    for i in label_cols:
        if i not in stays:
            out[i] = left.pop(0) if left else ""
    return out


def _format(cells: list[str], delimiter: str, ending: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=ending).writerow(cells)
    return buf.getvalue()


def check_output(output: Path, inputs: list[tuple[Path, str]]) -> None:
    """The output is none of the inputs (also through a link), and a path a file can be renamed to."""
    for other, what in inputs:
        if _same_path(output, other):
            raise UserError(f"--output {output} is {what}; the original is never overwritten: choose another path")
    if output.exists() and not output.is_file():  # os.replace would swap a device such as /dev/null for a file
        kind = "a folder" if output.is_dir() else "a device, pipe or socket"
        raise UserError(f"--output {output}: expected a CSV file name, found {kind}; give a file name, e.g. "
                        f"--output corrected.csv")
    parent = next((p for p in output.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"--output {output}: expected {parent} to be a folder, found a file; choose another path")


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except RuntimeError as err:  # a symlink loop (Python 3.11's resolve)
        raise UserError(f"--output {a}: expected a file path, found a symlink loop ({err}); choose another "
                        "path") from None


def _model_labels(run_dir: Path) -> set[str] | None:
    """The labels of the run's model (model/config.json), the only ones a suggestion can hold; None where the
    folder has no readable model (relabel does not need it, so it checks what it can)."""
    path = run_dir / "model" / "config.json"
    if not path.is_file() or path.stat().st_size > MAX_RUN_INFO_BYTES:  # a pipe would block, a huge file stall
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        return {str(v) for v in cfg["id2label"].values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _accepted_cells(inputs: RunInputs, run_dir: Path, records: dict[int, tuple[str, list[str]]], title_idx: int,
                    row: int, suggestion: tuple[str, list[str]]) -> list[str]:
    """The cells of an accepted row, once it is sure the row holds the title label_issues.csv names for it."""
    if row not in records:
        raise UserError(f"{inputs.train_file}: expected a record starting on row {row} (label_issues.csv lists it), "
                        f"found none (the file has {max(records)} rows); was the run made on another file?")
    cells = records[row][1]
    found = " ".join(cells[title_idx].split()) if title_idx < len(cells) else ""
    if found != suggestion[0]:
        raise UserError(f"{inputs.train_file}: row {row} holds {_excerpt(found)} but {run_dir / FILENAME} has "
                        f"{_excerpt(suggestion[0])} for it; was the run made on another file?")
    return cells


def _checked_labels(run_dir: Path, row: int, labels: list[str], known: set[str] | None) -> list[str]:
    """Suggested labels fit to be written into a label cell: no control characters, and (where the run's model
    can be read) labels of the run; another one would add a label nobody trained on."""
    for lab in labels:
        try:
            check_label_name(run_dir / FILENAME, row, lab)
        except UserError:  # the same rule as for the training file, with the fix for label_issues.csv
            raise UserError(f"{run_dir / FILENAME}: row {row}: expected suggested labels without '|' or control "
                            f"characters, found {_excerpt(lab)}; {ISSUES_FIX}") from None
        if known is not None and lab not in known:
            raise UserError(f"{run_dir / FILENAME}: row {row}: expected suggested labels of the run's model, found "
                            f"{_excerpt(lab)}; {ISSUES_FIX}")
    return labels


def relabel(run_dir: Path, accept_file: Path, output: Path | None = None, train_file: Path | None = None) -> RelabelResult:
    """Validate everything, build the corrected text in memory, then write it (temp file + rename)."""
    run_dir = Path(run_dir)
    inputs = read_run(run_dir, train_file)
    accepted = read_accepted(Path(accept_file))
    suggestions = read_suggestions(run_dir, accepted)
    unknown = [r for r in accepted if r not in suggestions]
    if unknown:
        raise UserError(f"{accept_file}: row {unknown[0]} is not in {run_dir / FILENAME}"
                        + (f" (nor rows {unknown[1:9]})" if len(unknown) > 1 else "")
                        + "; use the `row` column of label_issues.csv")
    output = Path(output) if output is not None else run_dir / DEFAULT_OUTPUT
    check_output(output, [(inputs.train_file, "the training file"), (Path(accept_file), "the --accept file"),
                          (run_dir / RUN_INFO, f"the run's {RUN_INFO}"), (run_dir / FILENAME, f"the run's {FILENAME}")])

    text = read_text(inputs.train_file, inputs.encoding)  # BOM stripped; put back on writing
    bom = inputs.train_file.read_bytes().startswith(codecs.BOM_UTF8)
    try:
        records = _records(text, inputs.delimiter)
    except csv.Error as err:  # train.py read this file; only a run_info.json naming another delimiter gets here
        raise UserError(f"{inputs.train_file}: expected CSV with delimiter {inputs.delimiter!r}, found malformed "
                        f"CSV ({err}); {DAMAGED}") from None
    header_raw, header_cells = records[1]
    header = [h.strip() for h in header_cells]
    _, label_cols = find_columns(inputs.train_file, header, inputs.text_column, inputs.label_prefix, need_labels=True)
    title_idx = header.index(inputs.text_column)

    result = RelabelResult(output, [])
    wanted: dict[int, list[str]] = {}
    known = _model_labels(run_dir)
    for row in accepted:
        cells = _accepted_cells(inputs, run_dir, records, title_idx, row, suggestions[row])
        labels = _checked_labels(run_dir, row, suggestions[row][1], known)
        labels = [lab for lab in labels if lab != inputs.empty_label]  # the empty label is written as empty cells
        given = {cells[i].strip() for i in label_cols if i < len(cells) and cells[i].strip()}
        if given == set(labels):
            result.unchanged.append(row)
        else:
            wanted[row] = labels
    added = _added_columns(header, label_cols, inputs.label_prefix, max((len(v) for v in wanted.values()), default=0))
    header_cells = header_cells + added
    label_cols = label_cols + list(range(len(header_cells) - len(added), len(header_cells)))
    result.added_columns.extend(added)

    parts = {row: raw_text for row, (raw_text, _) in records.items()}
    if result.added_columns:
        parts[1] = _format(header_cells, inputs.delimiter, _ending(header_raw))
    for row, labels in wanted.items():
        raw_text, cells = records[row]
        parts[row] = _format(_place(cells, label_cols, labels), inputs.delimiter, _ending(raw_text))
        result.changed.append(row)
    write_bytes(output, _encoded("".join(parts.values()), inputs.encoding, bom))
    return result


def _added_columns(header: list[str], label_cols: list[int], prefix: str, most_labels: int) -> list[str]:
    """More labels than label columns: `Column N+1`... for the header (the loader reads every such column; rows
    without a cell there stay as they are)."""
    last = max(int(re.findall(r"\d+", header[i])[-1]) for i in label_cols)
    return [f"{prefix} {last + 1 + k}" for k in range(most_labels - len(label_cols))]


def _encoded(text: str, encoding: str, bom: bool) -> bytes:
    """The corrected file in the training file's encoding (its UTF-8 BOM put back)."""
    codec = "utf-8-sig" if bom and encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding
    try:
        return text.encode(codec)
    except UnicodeEncodeError as err:
        raise UserError(f"a suggested label has characters that {encoding} cannot hold "
                        f"({err.object[err.start:err.end]!r}); re-save the training file as UTF-8 and retrain") from err


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m jobtitles.relabel", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, type=Path, help="the run folder (outputs/<run>) with label_issues.csv")
    p.add_argument("--accept", required=True, type=Path,
                   help="text file: row numbers (label_issues.csv `row`) whose suggestion you accept, one per line")
    p.add_argument("--output", type=Path, default=None, help=f"corrected CSV (default: <run>/{DEFAULT_OUTPUT})")
    p.add_argument("--train_file", type=Path, default=None,
                   help="the run's training CSV, when run_info.json's relative path does not resolve from here")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    res = relabel(args.run, args.accept, args.output, args.train_file)
    print(f"wrote {res.output}: {len(res.changed)} rows relabelled" + (f" ({_rows(res.changed)})" if res.changed else ""))
    if res.unchanged:
        print(f"  {len(res.unchanged)} accepted rows already carry the suggested labels: {_rows(res.unchanged)}")
    if res.added_columns:
        print(f"  added label columns {res.added_columns}: some rows needed more labels than the header had columns")
    print(f"retrain: python train.py --config configs/base.yaml --train_file {res.output} --output_dir <new run folder>")
    return 0


def _rows(rows: list[int], shown: int = 12) -> str:
    return ", ".join(map(str, rows[:shown])) + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


if __name__ == "__main__":
    sys.exit(main())
