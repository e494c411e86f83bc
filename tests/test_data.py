import logging

import numpy as np
import pytest

from jobtitles.core.data import load_labeled_csv, load_titles
from jobtitles.core.errors import UserError


def load(path, **kw):
    return load_labeled_csv(path, **kw)


def test_parses_schema_bom_crlf_quotes_and_merges_labels(tmp_path):
    text = ("\ufeffTitle;Column 1;Column 2;Column 3\r\n"
            '"VP; Sales";Vice President ;;\r\n'
            "CEO & Founder;Chief Officer;Owner;Chief Officer\r\n"
            "Board Member;;;\r\n"
            "Engineer;Individual Contributor/Staff;;\r\n")
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    data = load(path)
    assert data.titles == ["VP; Sales", "CEO & Founder", "Board Member", "Engineer"]
    assert data.rows == [2, 3, 4, 5]
    assert data.labels == sorted(["Vice President", "Chief Officer", "Owner", "Not Required",
                                  "Individual Contributor/Staff"])
    assert data.label_sets[1] == ["Chief Officer", "Owner"]  # stripped, de-duplicated
    assert data.label_sets[2] == ["Not Required"]
    assert data.y.dtype == np.float32 and data.y.sum(axis=1).tolist() == [1, 2, 1, 1]


def test_empty_label_null_keeps_all_zero_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1\nA;X\nB;Y\nC;\n")
    data = load(path, empty_label=None)
    assert data.labels == ["X", "Y"]
    assert data.y[2].sum() == 0


@pytest.mark.parametrize("content,message", [
    (None, r"missing\.csv: file not found"),
    ("", r"t\.csv: the file is empty"),
    ("Name;Column 1\nA;X\n", r"t\.csv: no 'Title' column; found columns \['Name', 'Column 1'\]"),
    ("Title;Level\nA;X\n", r"t\.csv: no label column; expected columns named 'Column 1'"),
    ("Title,Column 1\nA,X\n", r"t\.csv: the header 'Title,Column 1' looks comma-delimited but ';' is expected"),
    ("Title;Column 1\nA;X\n;Y\n", r"t\.csv: empty title in rows 3; fill them in or set `empty_titles: drop`"),
    ("Title;Column 1\nA;X\nB;X\n", r"only one label overall \('X'\)"),
])
def test_bad_files_get_one_clear_message(tmp_path, content, message):
    path = tmp_path / ("missing.csv" if content is None else "t.csv")
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        load(path, empty_titles="error")


def test_non_utf8_byte_reports_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("Title;Column 1\nA;X\nGesch\u00e4ftsf\u00fchrer;Y\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"row 3 is not valid utf-8 \(byte 0xe4\).*set `encoding`"):
        load(path)
    assert load(path, encoding="latin-1").titles[1] == "Geschäftsführer"


def test_dropped_rows_are_reported_not_lost(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1\nA;X\n  ;Y\nB;Y\nb ;Y\nC;X;extra\nA;Y\n")
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        data = load(path, n_splits=5)
    assert data.titles == ["A", "B", "A"]
    assert data.dropped == [(3, "empty title"), (5, "duplicate of row 4"), (6, "3 fields but the header has 2")]
    assert len(data) + len(data.dropped) == 6  # every input row used or reported
    text = caplog.text
    assert "dropped rows 3: empty title" in text
    assert "1 titles appear with conflicting labels: row 2 ['X'] vs row 7 ['Y']" in text
    assert "labels with fewer rows than the 5 folds: 'X' (1 rows), 'Y' (2 rows)" in text


def test_label_spelling_variants_reported_or_merged(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1\nA;Vice President\nB;vice  president\nC;Vice President\nD;Owner\n")
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        assert load(path).labels == ["Owner", "Vice President", "vice  president"]
    assert "differ only by case or spacing are kept apart: 'Vice President' / 'vice  president'" in caplog.text
    assert load(path, merge_label_variants=True).labels == ["Owner", "Vice President"]


def test_zero_rows_after_cleaning(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1\n ;X\n")
    with pytest.raises(UserError, match=r"no usable rows after cleaning \(1 dropped\)"):
        load(path)


def test_load_titles_txt_and_csv(tmp_path):
    txt = tmp_path / "t.txt"
    txt.write_text("VP Sales\n\nCEO\n")
    assert load_titles(txt)[0] == ["VP Sales", "CEO"]
    csv = tmp_path / "t.csv"
    csv.write_text("Title\nVP Sales\n")
    titles, rows, gold = load_titles(csv)
    assert (titles, rows, gold) == (["VP Sales"], [2], None)
    empty = tmp_path / "e.txt"
    empty.write_text("\n")
    with pytest.raises(UserError, match=r"e\.txt: no titles found"):
        load_titles(empty)
    bad = tmp_path / "bad.csv"
    bad.write_bytes("Title\nCEO\nGesch\u00e4ftsf\u00fchrer\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"bad\.csv: row 3 is not valid utf-8"):
        load_titles(bad)
    assert load_titles(bad, encoding="latin-1")[0] == ["CEO", "Geschäftsführer"]


def test_iter_titles_streams_in_chunks(tmp_path):
    from jobtitles.core.data import iter_titles

    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1\n" + "".join(f"Title {i};X\n" for i in range(25)))
    chunks = list(iter_titles(path, chunk_size=10))
    assert [len(c[0]) for c in chunks] == [10, 10, 5]
    assert chunks[2][1] == [22, 23, 24, 25, 26] and chunks[0][2][0] == ["X"]


def test_extra_columns_are_reported(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text("Title;Column 1;Notes\nCEO;Chief Officer;x\nVP;Vice President;\n")
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        load(path)
    assert "columns ['Notes'] ignored: only 'Title' and 'Column N' columns are read" in caplog.text


def test_truncation_reported_once_with_count(tiny_model_dir, caplog):
    from transformers import AutoTokenizer

    from jobtitles.core.tokenization import build_dataset, tokenize_dataset

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    titles = ["CEO", "Senior Vice President of Global Strategic Partnerships and Corporate Development EMEA",
              "Director of Sales and Marketing Operations for Enterprise Accounts in Central Europe"]
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        ds = tokenize_dataset(build_dataset(titles, None, [2, 3, 4]), tok, max_length=8)
    assert ds["length"] == [3, 8, 8]
    assert caplog.text.count("truncated") == 1
    assert "2 titles reached max_length=8 tokens and were truncated" in caplog.text


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_files_are_read_in_blocks_with_every_line_and_row_as_line_by_line(tmp_path, monkeypatch, block):
    """predict.py decodes a file a block of whole lines at a time: lines that straddle a block, CRLF, a BOM,
    a BOM opening a later line, a last line without its line end and blank rows come out as read line by line,
    and a bad byte still names its exact row."""
    from jobtitles.core import data

    monkeypatch.setattr(data, "BLOCK_BYTES", block)
    lines = ["VP of Sales", "Chief Executive Officer of a Very Long Company Name", "", "Gesch\u00e4ftsf\u00fchrer",
             "\ufeffDirector", "Head of IT\r", "   ", "Owner"]
    path = tmp_path / "titles.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8"))
    empty: list[int] = []
    titles, rows, _ = load_titles(path, empty_rows=empty)
    assert titles == ["VP of Sales", "Chief Executive Officer of a Very Long Company Name", "Gesch\u00e4ftsf\u00fchrer",
                      "Director", "Head of IT", "Owner"]
    assert rows == [1, 2, 4, 5, 6, 8] and empty == [3, 7]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(("\n".join(["Sales Manager"] * 20) + "\nCFO \xff\nCEO\n").encode("latin-1"))
    with pytest.raises(UserError, match=r"row 21 is not valid utf-8 \(byte 0xff\)"):
        load_titles(bad)
