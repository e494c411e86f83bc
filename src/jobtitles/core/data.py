"""Read and validate the user's CSV (`Title;Column 1;Column 2;...`) into titles and label sets.

Row numbers are spreadsheet rows: the header is row 1, the first title is row 2. Every input row is either
used or reported with the reason it was dropped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from sklearn.preprocessing import MultiLabelBinarizer

from jobtitles.core.errors import UserError
from jobtitles.core.log import logger, warn
from jobtitles.core.label_groups import LabelGroup, describe, detect_groups, explicit_groups
from jobtitles.core.titles import MAX_TITLE_CHARS, clean_title, is_blank
from jobtitles.core.training_schema import SUGGESTION_COLUMNS

MAX_LISTED = 8  # row numbers listed in one message before "and N more"


@dataclass
class LabeledData:
    titles: list[str]
    label_sets: list[list[str]]
    rows: list[int]  # spreadsheet row of each kept title
    labels: list[str]  # sorted vocabulary
    y: np.ndarray  # (n, n_labels) float32 multi-hot
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (row, reason)
    groups: list[LabelGroup] = field(default_factory=list)  # exclusive label groups (detected or configured)
    label_columns: int = 0  # the file's label columns ('Column 1', ...), for rows written to append to it

    def __len__(self) -> int:
        return len(self.titles)

    def subset(self, indices: Sequence[int]) -> "LabeledData":
        """These rows only (a time budget's cross-validation sample), with the same labels, groups and file
        layout; the dropped rows stay the file's."""
        idx = [int(i) for i in indices]
        return dataclasses.replace(self, titles=[self.titles[i] for i in idx],
                                   label_sets=[self.label_sets[i] for i in idx], rows=[self.rows[i] for i in idx],
                                   y=self.y[idx])


def _listing(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:MAX_LISTED]))
    return shown + (f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else "")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _codec(encoding: str) -> str:
    return "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding  # tolerate a BOM


def _decode(raw: bytes, path: Path, encoding: str, first_row: int = 1) -> str:
    """Decode bytes that start at `first_row`; a bad byte is reported with its row, not as a traceback."""
    try:
        return raw.decode(_codec(encoding))
    except UnicodeDecodeError as err:
        if first_row == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise UserError(f"{path}: starts with a UTF-16 byte-order mark but {encoding} is expected; set "
                            "`encoding: utf-16` (--encoding utf-16 for predict.py) or re-save the file as UTF-8") from err
        row = first_row + raw.count(b"\n", 0, err.start)
        raise UserError(
            f"{path}: row {row} is not valid {encoding} (byte 0x{raw[err.start]:02x}); re-save the file as UTF-8 "
            f"or set `encoding` (--encoding for predict.py), e.g. cp1252 or latin-1"
        ) from err
    except LookupError as err:
        raise UserError(f"encoding: unknown encoding {encoding!r}; use e.g. utf-8, cp1252, latin-1") from err


def read_text(path: Path, encoding: str) -> str:
    """Decode the whole file; a bad byte is reported with its row, not as a UnicodeDecodeError."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path (train_file / --input)")
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"{path}: the file is empty; expected a header row 'Title;Column 1;...' and titles")
    return _decode(raw, path, encoding)


def _check_delimiter(path: Path, header_line: str, delimiter: str, fix: str = "config") -> None:
    """`fix`: how the message says to change the delimiter: "config" (train.py: the YAML key or its flag),
    "flag" (predict.py), "rename" (a .tsv file, always read tab-delimited), "resave" (the page's upload: only
    re-saving the file is in the user's hands)."""
    if delimiter in header_line:
        return
    for other, name in ((",", "comma"), ("\t", "tab"), ("|", "pipe")):
        if other != delimiter and other in header_line:
            flag = f"`--delimiter {DELIMITER_FLAGS[other]}`"
            how = {"config": f"set `delimiter: \"{other}\"` in the config or pass {flag}",
                   "flag": f"run with {flag}", "rename": f"rename it to .csv and run with {flag}", "resave": ""}[fix]
            raise UserError(
                f"{path}: the header {header_line.strip()!r} looks {name}-delimited but {delimiter!r} is expected; "
                f"re-save with '{delimiter}' between fields" + (f" or {how}" if how else "")
            )


DELIMITER_FLAGS = {",": ",", "\t": "$'\\t'", "|": "'|'"}  # as a shell takes them after --delimiter


def read_rows(path: Path, delimiter: str = ";", encoding: str = "utf-8") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (row number, cells) for every record; handles quotes, CRLF and a BOM."""
    text = read_text(path, encoding)
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    _check_delimiter(path, first_line, delimiter)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return _header(path, reader), list(_records(path, reader, delimiter))


def _header(path: Path, reader) -> list[str]:
    try:
        return [h.strip() for h in next(reader)]
    except csv.Error as err:
        raise UserError(f"{path}: malformed CSV header ({err}); check the quoting") from err


def _records(path: Path, reader, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row of the record's first line, cells) for each non-blank record, checked for runaway quoting."""
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UserError(f"{path}: malformed CSV at row {reader.line_num} ({err}); check the quoting") from err
        check_fields(path, start, cells, delimiter, reader.line_num - start + 1)
        if any(c.strip() for c in cells):
            yield start, cells
        start = reader.line_num + 1


def check_fields(path: Path, row: int, cells: list[str], delimiter: str, n_lines: int) -> None:
    """A job title or label never spans lines or holds the delimiter twice: such a field is a quote that was
    opened and never closed, and it has swallowed the rows after it. Stop rather than merge rows silently."""
    for cell in cells:
        if "\n" in cell or "\r" in cell:
            raise UserError(f"{path}: row {row}: a quoted field runs over {max(n_lines, 2)} lines (an unclosed "
                            "'\"'?); job titles and labels are one line each: close or remove that quote")
        if cell.count(delimiter) >= 2:
            raise UserError(f"{path}: row {row}: a field holds the delimiter {delimiter!r} {cell.count(delimiter)} "
                            f"times ({cell[:60]!r}...): an unclosed '\"' merged several fields; close or remove it")


def _some(names: list[str], most: int = 20) -> str:
    """A column list short enough for one line."""
    return str(names) if len(names) <= most else f"{names[:most]} and {len(names) - most} more"


def find_columns(path: Path, header: list[str], text_column: str, label_prefix: str, need_labels: bool) -> tuple[int, list[int]]:
    if header.count(text_column) > 1:
        where = [i + 1 for i, h in enumerate(header) if h == text_column]
        raise UserError(f"{path}: the header has {header.count(text_column)} '{text_column}' columns (columns "
                        f"{where}); expected one: rename or remove the others")
    if text_column not in header:
        raise UserError(
            f"{path}: no '{text_column}' column; found columns {_some(header)}. "
            f"Rename the title column to '{text_column}' or set `text_column`"
        )
    pattern = re.compile(rf"^{re.escape(label_prefix)}\s*\d+$", re.IGNORECASE)
    label_cols = [i for i, h in enumerate(header) if pattern.match(h)]
    label_set = set(label_cols)  # a set: a header of 60,000 columns must not cost minutes
    others = [h for i, h in enumerate(header) if i not in label_set and h != text_column and h]
    if need_labels and not label_cols:
        raise UserError(
            f"{path}: no label column; expected columns named '{label_prefix} 1', '{label_prefix} 2', ... "
            f"but found {_some(header)}. Rename them or set `label_column_prefix`"
        )
    if others and label_cols:
        warn(f"{path}: columns {_some(others)} ignored: only '{text_column}' and '{label_prefix} N' columns are read")
    return header.index(text_column), label_cols


SUGGEST_COLUMNS = (SUGGESTION_COLUMNS[0], SUGGESTION_COLUMNS[-1])  # a `jobtitles suggest` output, to fill in


def _rows(path: Path, header: list[str], records, title_idx: int, label_idx: list[int], delimiter: str,
          empty_titles: str, dropped: list[tuple[int, str]], messages: list[str]):
    """The rows with a title: (row, title, labels) and each row's label cells column by column; the others go
    to `dropped` with their reason."""
    kept: list[tuple[int, str, list[str]]] = []
    column_cells: dict[int, list[str]] = {}  # row -> its label cells, column by column ("" where empty)
    empty_rows, ragged_rows, cut_rows, unfilled = [], [], [], []
    # a suggestion file's row left empty is not labelled yet, not "no label": it would train as the empty label
    suggestions = all(c in header for c in SUGGEST_COLUMNS)
    for row, cells in records:
        extra = cells[len(header):]
        if any(c.strip() for c in extra):
            ragged_rows.append(row)
            dropped.append((row, f"{len(cells)} fields but the header has {len(header)}"))
            continue
        title, cut = clean_title(" ".join(cells[title_idx].split()) if title_idx < len(cells) else "")
        if not title:
            empty_rows.append(row)
            continue
        if cut:
            cut_rows.append(row)
        labels = [cells[i].strip() for i in label_idx if i < len(cells) and cells[i].strip()]
        if suggestions and not labels:
            unfilled.append(row)
            dropped.append((row, "not labelled yet (a suggested title with empty label columns)"))
            continue
        for label in labels:
            check_label_name(path, row, label)
        column_cells[row] = [cells[i].strip() if i < len(cells) else "" for i in label_idx]
        kept.append((row, title, list(dict.fromkeys(labels))))
    if ragged_rows:
        messages.append(
            f"{path}: dropped rows {_listing(ragged_rows)}: more fields than the header "
            f"(a '{delimiter}' inside an unquoted title? quote the title)"
        )
    if cut_rows:  # the same cut as every prediction path makes, so training sees what predictions see
        messages.append(f"{path}: rows {_listing(cut_rows)}: titles longer than {MAX_TITLE_CHARS} characters were "
                        "cut to that length; a job title is one line of a few words: check those rows")
    if unfilled:
        messages.append(f"{path}: dropped rows {_listing(unfilled)}: suggested titles not labelled yet (empty label "
                        "columns); fill them in (a title with none of the labels: write the empty label) or delete them")
    if empty_rows:
        if empty_titles == "error":
            raise UserError(f"{path}: empty title in rows {_listing(empty_rows)}; fill them in or set `empty_titles: drop`")
        dropped += [(r, "empty title") for r in empty_rows]
        messages.append(f"{path}: dropped rows {_listing(empty_rows)}: empty title")

    return kept, column_cells


def load_labeled_csv(
    path: str | Path,
    *,
    text_column: str = "Title",
    label_prefix: str = "Column",
    delimiter: str = ";",
    encoding: str = "utf-8",
    empty_label: str | None = "Not Required",
    empty_titles: str = "drop",
    merge_label_variants: bool = False,
    drop_duplicates: bool = True,
    n_splits: int | None = None,
    max_rows: int | None = None,
    label_groups: str | list | None = "auto",
) -> LabeledData:
    path = Path(path)
    header, records = read_rows(path, delimiter, encoding)
    title_idx, label_idx = find_columns(path, header, text_column, label_prefix, need_labels=True)
    if max_rows is not None:
        records = records[:max_rows]
    messages: list[str] = []
    dropped: list[tuple[int, str]] = []
    kept, column_cells = _rows(path, header, records, title_idx, label_idx, delimiter, empty_titles, dropped,
                               messages)

    kept = _merge_label_spellings(path, kept, merge_label_variants, messages)
    if empty_label is not None:
        kept = [(r, t, labels or [empty_label]) for r, t, labels in kept]
    if drop_duplicates:
        kept = _drop_duplicates(path, kept, dropped, messages)
    _report_conflicts(path, kept, messages)
    if not kept:
        raise UserError(f"{path}: no usable rows after cleaning ({len(dropped)} dropped); see the messages above")

    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform([labels for _, _, labels in kept]).astype(np.float32)
    labels = [str(c) for c in mlb.classes_]
    if len(labels) < 2:
        found = labels[0] if labels else "none"
        raise UserError(f"{path}: only one label overall ({found!r}); a classifier needs at least 2 labels")
    if n_splits is not None:
        counts = y.sum(axis=0).astype(int)
        rare = [f"{lab!r} ({c} rows)" for lab, c in zip(labels, counts) if c < n_splits]
        if rare:
            messages.append(
                f"{path}: labels with fewer rows than the {n_splits} folds: {', '.join(rare)}; "
                "some test folds will have none of them (reported per fold)"
            )
    groups = _groups(path, label_groups, kept, column_cells, labels, label_idx, messages)
    for m in messages:
        warn(m)
    return LabeledData(
        titles=[t for _, t, _ in kept],
        label_sets=[lab for _, _, lab in kept],
        rows=[r for r, _, _ in kept],
        labels=labels,
        y=y,
        dropped=sorted(dropped),
        groups=groups,
        label_columns=len(label_idx),
    )


def _groups(path: Path, setting, kept: list, column_cells: dict[int, list[str]], labels: list[str],
            label_idx: list[int], messages: list[str]) -> list[LabelGroup]:
    if setting in (None, "none"):
        return []
    if setting != "auto":
        return explicit_groups(setting, labels, [lab for _, _, lab in kept], [r for r, _, _ in kept], path)
    per_column = [[column_cells[r][c] for r, _, _ in kept] for c in range(len(label_idx))]
    groups = [g for g in detect_groups(per_column) if set(g.labels) <= set(labels)]
    if groups:
        logger.info(f"{path}: label columns hold separate label families: {describe(groups)}")
    return groups


def check_label_name(path: Path | str, row: int | None, label: str) -> None:
    """'|' separates labels in every file the project writes (oof_predictions.csv, predictions, Markdown tables);
    a label holding it, or a control character, would be split or break those files."""
    bad = [c for c in label if c == "|" or unicodedata.category(c) == "Cc"]
    if bad:
        where = f"row {row}: " if row is not None else ""
        raise UserError(f"{path}: {where}label {label!r} contains {bad[0]!r}; labels may not contain '|' or control "
                        "characters (tabs, line breaks): rename the label")


def _merge_label_spellings(path: Path, kept: list, merge: bool, messages: list[str]) -> list:
    spellings: dict[str, Counter] = defaultdict(Counter)
    for _, _, labels in kept:
        for lab in labels:
            spellings[_norm(lab)][lab] += 1
    variants = {k: c for k, c in spellings.items() if len(c) > 1}
    if not variants:
        return kept
    described = "; ".join(" / ".join(repr(s) for s in c) for c in variants.values())
    if not merge:
        messages.append(
            f"{path}: labels that differ only by case or spacing are kept apart: {described}; "
            "fix the file or set `merge_label_variants: true`"
        )
        return kept
    canonical = {s: c.most_common(1)[0][0] for c in variants.values() for s in c}
    messages.append(f"{path}: merged label spellings into the most frequent one: {described}")
    return [(r, t, list(dict.fromkeys(canonical.get(lab, lab) for lab in labels))) for r, t, labels in kept]


def _drop_duplicates(path: Path, kept: list, dropped: list, messages: list[str]) -> list:
    """Exact duplicates (same title up to case/spacing, same labels) would sit in train and test folds at once."""
    seen: dict[tuple[str, frozenset], int] = {}
    out, dup_rows = [], []
    for r, t, labels in kept:
        key = (_norm(t), frozenset(labels))
        if key in seen:
            dup_rows.append(r)
            dropped.append((r, f"duplicate of row {seen[key]}"))
            continue
        seen[key] = r
        out.append((r, t, labels))
    if dup_rows:
        messages.append(
            f"{path}: dropped {len(dup_rows)} duplicate rows ({_listing(dup_rows)}): same title and labels as an "
            "earlier row; duplicates in both train and test folds would inflate the CV scores"
        )
    return out


def _report_conflicts(path: Path, kept: list, messages: list[str]) -> None:
    by_title: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
    for r, t, labels in kept:
        by_title[_norm(t)].append((r, labels))
    conflicts = [v for v in by_title.values() if len(v) > 1]
    if conflicts:
        shown = "; ".join(
            " vs ".join(f"row {r} {labels}" for r, labels in group) for group in conflicts[:MAX_LISTED]
        )
        more = f" and {len(conflicts) - MAX_LISTED} more" if len(conflicts) > MAX_LISTED else ""
        messages.append(
            f"{path}: {len(conflicts)} titles appear with conflicting labels: {shown}{more}; "
            "both rows are kept, fix them if one is wrong"
        )


TEXT_SUFFIXES = {".txt", ""}
TABLE_SUFFIXES = {".csv": None, ".tsv": "\t"}  # None: the configured delimiter


def iter_titles(path: str | Path, chunk_size: int = 10000, *, text_column: str = "Title",
                label_prefix: str = "Column", delimiter: str = ";", encoding: str = "utf-8",
                empty_rows: list[int] | None = None, fix: str | None = None):
    """Stream (titles, rows, gold label sets or None) chunks from a .csv/.tsv file (labels read when present,
    for checking) or a .txt file (one title per line), without reading the whole file into memory.

    Rows with an empty title are skipped; their row numbers are appended to `empty_rows` when given."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in TABLE_SUFFIXES:
        raise UserError(f"{path}: expected a .csv, .tsv or .txt file, found '{suffix}'; convert it or rename it")
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path (--input)")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty; expected titles (a 'Title' column or one title per line)")
    with open(path, "rb") as fh:
        yield from _title_chunks(_decoded_lines(fh, path, encoding), path, chunk_size, text_column, label_prefix,
                                 TABLE_SUFFIXES.get(suffix) or delimiter, suffix in TABLE_SUFFIXES, empty_rows,
                                 fix or ("rename" if TABLE_SUFFIXES.get(suffix) else "flag"))


def iter_lines(lines, source: str, chunk_size: int, empty_rows: list[int] | None = None):
    """The same chunks from any iterable of text lines, one title each (standard input)."""
    yield from _title_chunks(iter(lines), Path(source), chunk_size, "", "", "", False, empty_rows)


def _title_chunks(lines, path: Path, chunk_size: int, text_column: str, label_prefix: str, delimiter: str,
                  table: bool, empty_rows: list[int] | None, fix: str = "flag"):
    if chunk_size < 1:
        raise UserError(f"chunk_size must be at least 1, found {chunk_size}")
    found = 0
    if table:
        header_line = next(lines, "")
        _check_delimiter(path, header_line, delimiter, fix)
        reader = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter)
        title_idx, label_idx = find_columns(path, _header(path, reader), text_column, label_prefix, need_labels=False)
        records = _records(path, reader, delimiter)
    else:
        title_idx, label_idx = 0, []
        records = ((i + 1, [line]) for i, line in enumerate(lines))
    titles, rows, gold = [], [], []
    for line_no, cells in records:
        title = " ".join(cells[title_idx].split()) if title_idx < len(cells) else ""
        if is_blank(title):  # the prediction side's one rule (titles.is_blank)
            if empty_rows is not None:
                empty_rows.append(line_no)
            continue
        titles.append(title)
        rows.append(line_no)
        if label_idx:
            gold.append([c.strip() for c in (cells[i] for i in label_idx if i < len(cells)) if c.strip()])
        if len(titles) == chunk_size:
            found += len(titles)
            yield titles, rows, (gold if label_idx else None)
            titles, rows, gold = [], [], []
    if titles:
        found += len(titles)
        yield titles, rows, (gold if label_idx else None)
    if not found:
        raise UserError(f"{path}: no titles found; expected a '{text_column or 'Title'}' column or one title per line")


def _decoded_lines(fh, path: Path, encoding: str):
    """Text lines of a binary file. ASCII-compatible encodings are decoded line by line, so a bad byte is
    reported with its exact row; UTF-16/32 (whose line breaks are not the byte 0x0a) through an incremental
    decoder, with the row of the chunk that failed."""
    try:
        ascii_compatible = "\n".encode(encoding) == b"\n"
    except LookupError as err:
        raise UserError(f"encoding: unknown encoding {encoding!r}; use e.g. utf-8, utf-16, cp1252, latin-1") from err
    if ascii_compatible:
        yield from _block_lines(fh, path, encoding)
        return
    row = 0
    try:
        for row, line in enumerate(io.TextIOWrapper(fh, encoding=encoding, newline=""), start=1):
            yield line
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid {encoding} after row {row} ({err.reason}); re-save the file as "
                        "UTF-8 or set --encoding") from err


BLOCK_BYTES = 1 << 18


def _block_lines(fh, path: Path, encoding: str):
    """The lines of an ASCII-compatible file (each with its "\\n"), decoded a block of whole lines at a time
    (one decode call per megabyte instead of per line); a block that does not decode is decoded line by line, so
    the error names the exact row."""
    row, rest, codec = 1, b"", _codec(encoding)
    while True:
        block = fh.read(BLOCK_BYTES)
        if not block:
            break
        cut = block.rfind(b"\n") + 1
        if not cut:  # no line end in the block: a longer line, read on
            rest += block
            continue
        whole, rest = rest + block[:cut], block[cut:]
        yield from _decoded_block(whole, path, encoding, codec, row)
        row += whole.count(b"\n")
    if rest:
        yield from _decoded_block(rest, path, encoding, codec, row)


def _decoded_block(raw: bytes, path: Path, encoding: str, codec: str, first_row: int):
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        text = None
    if text is None or (codec == "utf-8-sig" and "\ufeff" in text):  # as per line: a BOM opening any line goes
        parts = raw.split(b"\n")
        for k, line in enumerate(parts):
            if line or k < len(parts) - 1:
                yield _decode(line + (b"\n" if k < len(parts) - 1 else b""), path, encoding, first_row=first_row + k)
        return
    start = 0  # line by line from the decoded block, not a list: a block of blank rows costs no memory
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end + 1]
        start = end + 1
    if start < len(text):  # the file's last line without its line end
        yield text[start:]


def load_titles(path: str | Path, **kwargs) -> tuple[list[str], list[int], list[list[str]] | None]:
    """All titles of a file at once (see iter_titles)."""
    titles, rows, gold, has_gold = [], [], [], False
    for t, r, g in iter_titles(path, **kwargs):
        titles += t
        rows += r
        if g is not None:
            has_gold = True
            gold += g
    return titles, rows, (gold if has_gold else None)
