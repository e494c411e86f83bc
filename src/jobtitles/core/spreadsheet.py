"""Text cells of the CSVs written for people, safe to open in a spreadsheet (OWASP "CSV Injection").

Excel, LibreOffice Calc and Google Sheets run a cell that starts with a formula sign: a title such as
`=HYPERLINK("http://x","y")` or `+cmd|' /C calc'!A0` in predictions.csv would execute when the file is opened.
OWASP's remedy: such a cell gets a leading single quote, which the spreadsheet reads as "this is text".
`escape_cell` applies it to text cells (titles, label lists, reasons) only; numbers stay as they are, and JSONL,
Parquet and the training-schema CSV relabel writes stay verbatim. Every reader of these files in the project
undoes it with `unescape_cell`, so round trips are exact (`escape_cell` is injective: see unescape_cell).

The same rule is applied by Spark (`FORMULA_START` is also a Java regular expression, for `rlike`) and by the
page's "Download CSV" (serve/static/app.js holds the same pattern; a test keeps them equal).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

QUOTE = "'"
# Formula signs: OWASP's = + - @ tab CR LF, ASVS 5's NUL, and the compatibility forms that Unicode NFKC folds into
# = + - @ (full-width ＝ ＋ － ＠ run as formulas in Japanese Excel, OWASP www-community#1088; the small,
# superscript and subscript forms are listed with them: one rule, "NFKC first character", rather than a guess per
# application).
FORMULA_SIGNS = ("=+-@\t\r\n\x00"
                 "\u207a\u207c\u208a\u208c\u2a75\u2a76\ufb29\ufe62\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20")
# What a reader may trim before it looks for a formula sign: every other character up to U+0020 (what Java's
# String.trim and Spark's CSV writer drop: " =1+1" and "\x01=1" came out as "=1+1") and Unicode whitespace
# (str.isspace; LibreOffice's "Trim spaces"). Tab, CR, LF and NUL are formula signs themselves.
LEADING_SPACE = "".join(map(chr, [*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x21), 0x85, 0xA0, 0x1680,
                                   *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))


def _char_class(chars: str) -> str:
    """A regex character class of `chars`, runs of consecutive code points as ranges. \\uXXXX escapes (all the
    characters are in the BMP) mean the same in Python, Java and JavaScript regular expressions."""
    points, parts = sorted(map(ord, set(chars))), []
    start = prev = points[0]
    for cp in points[1:] + [-1]:
        if cp != prev + 1:
            parts.append(f"\\u{start:04x}" + (f"-\\u{prev:04x}" if prev > start else ""))
            start = cp
        prev = cp
    return "[" + "".join(parts) + "]"


# A cell that needs the quote: optional quotes (so that a title which itself starts with quotes round-trips),
# optional leading whitespace, then a formula sign. Anchored with ^ for Java's find() (Spark's rlike).
FORMULA_START = f"^{QUOTE}*{_char_class(LEADING_SPACE)}*{_char_class(FORMULA_SIGNS)}"
_NEEDS_QUOTE = re.compile(FORMULA_START)
_QUOTED = re.compile(f"^{QUOTE}+{_char_class(LEADING_SPACE)}*{_char_class(FORMULA_SIGNS)}")


def escape_cell(text: str) -> str:
    """The text as a spreadsheet-safe CSV cell: a leading "'" when a spreadsheet would read it as a formula."""
    return QUOTE + text if _NEEDS_QUOTE.match(text) else text


def unescape_cell(cell: str) -> str:
    """The text `escape_cell` was given. A cell gets the quote exactly when it matches `'*\\s*<sign>`, and every
    such result matches `'+\\s*<sign>`; a text that matches `'+\\s*<sign>` always got one. So removing one quote from
    exactly those cells inverts escape_cell for every string (a title `'=1` is written `''=1`, read back `'=1`)."""
    return cell[1:] if _QUOTED.match(cell) else cell


def csv_text(header: list[str], rows) -> str:
    """A CSV this project writes (semicolon, header, "\\n" lines); the caller escapes its text cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def read_rows(path: Path, text_columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a CSV this project wrote (semicolon, UTF-8, header) as dicts of strings, with `text_columns`
    unescaped: what the writer was given."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    for row in rows:
        for col in text_columns:
            if row.get(col) is not None:
                row[col] = unescape_cell(row[col])
    return rows
