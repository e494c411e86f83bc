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
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jobtitles.data import find_columns, read_text
from jobtitles.errors import UserError, cli_entry
from jobtitles.io_utils import read_json, sha256_file, write_bytes
from jobtitles.label_issues import FILENAME, read_label_issues
from jobtitles.labels import split_labels

DEFAULT_OUTPUT = "corrected.csv"  # inside the run folder
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # the line breaks csv (newline="") knows, kept


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


def read_run(run_dir: Path, train_file: Path | None = None) -> RunInputs:
    info_path = run_dir / "run_info.json"
    if not info_path.is_file():
        raise UserError(f"{run_dir}: no run_info.json; expected a run folder written by train.py (--run outputs/<run>)")
    info = read_json(info_path)
    try:
        project = info["config"]["project"]
        recorded = Path(info["train_file"])
        sha = info["fingerprint"]["csv_sha256"]
        inputs = RunInputs(train_file or recorded, sha, project["delimiter"], project["encoding"],
                           project["text_column"], project["label_column_prefix"], project["empty_label"])
    except (KeyError, TypeError) as err:
        raise UserError(f"{info_path}: missing {err}; expected the run_info.json of a train.py run") from err
    if not inputs.train_file.is_file():
        raise UserError(f"{inputs.train_file}: training file of {run_dir} not found (paths in run_info.json are "
                        "relative to the folder train.py ran in); run from there or pass --train_file <path>")
    found = sha256_file(inputs.train_file)
    if found != sha:
        raise UserError(f"{inputs.train_file}: changed since the run (SHA-256 {found[:12]}..., the run recorded "
                        f"{sha[:12]}...); its row numbers may no longer match label_issues.csv: retrain on the "
                        "current file first")
    return inputs


def read_accepted(path: Path) -> list[int]:
    """Row numbers, one per line; '#' starts a comment; blank lines are skipped."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; expected a text file with one row number per line")
    rows: list[int] = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.isdigit():
            raise UserError(f"{path}: line {n}: expected one row number (as in label_issues.csv), found {text!r}")
        rows.append(int(text))
    if not rows:
        raise UserError(f"{path}: no row numbers; list the label_issues.csv rows whose suggestion you accept, "
                        "one per line")
    return list(dict.fromkeys(rows))


def read_suggestions(run_dir: Path) -> dict[int, tuple[str, list[str]]]:
    path = run_dir / FILENAME
    if not path.is_file():
        raise UserError(f"{run_dir}: no {FILENAME}; the run had `label_issues: false` or predates it: "
                        "rerun train.py with label_issues on")
    return {int(r["row"]): (r["title"], split_labels(r["suggested"])) for r in read_label_issues(path)}


def _records(text: str, delimiter: str) -> dict[int, tuple[str, list[str]]]:
    """row -> (raw text, cells) per CSV record, numbered like jobtitles.data.read_rows: the row of the record's
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


def relabel(run_dir: Path, accept_file: Path, output: Path | None = None, train_file: Path | None = None) -> RelabelResult:
    """Validate everything, build the corrected text in memory, then write it (temp file + rename)."""
    run_dir = Path(run_dir)
    inputs = read_run(run_dir, train_file)
    accepted = read_accepted(Path(accept_file))
    suggestions = read_suggestions(run_dir)
    unknown = [r for r in accepted if r not in suggestions]
    if unknown:
        raise UserError(f"{accept_file}: row {unknown[0]} is not in {run_dir / FILENAME}"
                        + (f" (nor rows {unknown[1:9]})" if len(unknown) > 1 else "")
                        + "; use the `row` column of label_issues.csv")
    output = Path(output) if output is not None else run_dir / DEFAULT_OUTPUT
    for other, what in ((inputs.train_file, "the training file"), (Path(accept_file), "the --accept file")):
        if output.resolve() == other.resolve() or (output.exists() and os.path.samefile(output, other)):
            raise UserError(f"--output {output} is {what}; the original is never overwritten: choose another path")

    text = read_text(inputs.train_file, inputs.encoding)  # BOM stripped; put back on writing
    bom = inputs.train_file.read_bytes().startswith(codecs.BOM_UTF8)
    records = _records(text, inputs.delimiter)
    header_raw, header_cells = records[1]
    header = [h.strip() for h in header_cells]
    _, label_cols = find_columns(inputs.train_file, header, inputs.text_column, inputs.label_prefix, need_labels=True)
    title_idx = header.index(inputs.text_column)

    result = RelabelResult(output, [])
    wanted: dict[int, list[str]] = {}
    for row in accepted:
        raw_text, cells = records.get(row, ("", []))
        found = " ".join(cells[title_idx].split()) if title_idx < len(cells) else ""
        title, labels = suggestions[row]
        if found != title:
            raise UserError(f"{inputs.train_file}: row {row} holds {found!r} but label_issues.csv has {title!r} "
                            "for it; was the run made on another file?")
        labels = [lab for lab in labels if lab != inputs.empty_label]  # the empty label is written as empty cells
        given = {cells[i].strip() for i in label_cols if i < len(cells) and cells[i].strip()}
        if given == set(labels):
            result.unchanged.append(row)
        else:
            wanted[row] = labels
    # More labels than label columns: add `Column N+1`... to the header (the loader reads every such column;
    # rows without a cell there stay as they are).
    numbers = [int(re.findall(r"\d+", header[i])[-1]) for i in label_cols]
    for k in range(max((len(v) for v in wanted.values()), default=0) - len(label_cols)):
        name = f"{inputs.label_prefix} {max(numbers) + 1 + k}"
        header_cells = header_cells + [name]
        label_cols.append(len(header_cells) - 1)
        result.added_columns.append(name)

    parts = {row: raw_text for row, (raw_text, _) in records.items()}
    if result.added_columns:
        parts[1] = _format(header_cells, inputs.delimiter, _ending(header_raw))
    for row, labels in wanted.items():
        raw_text, cells = records[row]
        parts[row] = _format(_place(cells, label_cols, labels), inputs.delimiter, _ending(raw_text))
        result.changed.append(row)
    codec = "utf-8-sig" if bom and inputs.encoding.replace("_", "-").lower() in ("utf-8", "utf8") else inputs.encoding
    try:
        data = "".join(parts.values()).encode(codec)
    except UnicodeEncodeError as err:
        raise UserError(f"a suggested label has characters that {inputs.encoding} cannot hold "
                        f"({err.object[err.start:err.end]!r}); re-save the training file as UTF-8 and retrain") from err
    write_bytes(output, data)
    return result


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
