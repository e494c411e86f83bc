"""No CSV written for people runs as a spreadsheet formula (OWASP "CSV Injection"): a text cell that starts with a
formula sign gets a leading "'", every reader in the project undoes it exactly, and JSONL, Parquet and the
training-schema CSV relabel writes stay verbatim. Spark's CSV output: tests/test_spark.py; the page's
"Download CSV": tests/test_serve_browser.py."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from conftest import sample_rows, tiny_train_argv
from jobtitles.reporting import label_issues as li
from jobtitles.core.spreadsheet import FORMULA_SIGNS, FORMULA_START, LEADING_SPACE, escape_cell, unescape_cell

ROOT = Path(__file__).resolve().parents[1]

# (title as trained on / predicted, the cell every CSV for people holds)
CELLS = [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("-2+3", "'-2+3"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("\n=1+1", "'\n=1+1"),
    ("\x00=1+1", "'\x00=1+1"),
    (" =1+1", "' =1+1"),  # readers that trim (LibreOffice's "Trim spaces", Spark's CSV writer) would expose it
    ("\x01=1+1", "'\x01=1+1"),  # Java's trim drops it
    ("\u3000=1+1", "'\u3000=1+1"),  # ideographic space
    ("＝1+1", "'＝1+1"),  # full-width forms run in Japanese Excel
    ("＋1", "'＋1"), ("－1", "'－1"), ("＠SUM(1)", "'＠SUM(1)"),
    ("'=1+1", "''=1+1"),  # a title that starts with the quote itself: one more, so it reads back exactly
    ("''-1", "'''-1"),
    # left as they are
    ("VP Sales", "VP Sales"), ("C++ Developer", "C++ Developer"), ("Sales\n=1+1", "Sales\n=1+1"),
    ("a=1", "a=1"), ("'quoted'", "'quoted'"), ("'", "'"), ("", ""), ("ー", "ー"), ("\u2212" + "1", "\u2212" + "1"),
]


@pytest.mark.parametrize("text, cell", CELLS)
def test_escape_cell_and_back(text, cell):
    assert escape_cell(text) == cell
    assert unescape_cell(cell) == text


def runs_as_formula(cell: str) -> bool:
    """An independent model of the readers: trim what Java trims and Unicode whitespace, fold NFKC, look at the
    first character."""
    if cell[:1] in ("\t", "\r", "\n", "\x00"):
        return True
    rest = cell.lstrip("".join(chr(c) for c in range(0x21)) + "\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                       + "".join(map(chr, range(0x2000, 0x200B))))
    return unicodedata.normalize("NFKC", rest[:1])[:1] in ("=", "+", "-", "@") and rest[:1] != ""


def test_every_short_string_is_safe_and_reads_back_exactly():
    alphabet = ["'", "=", "-", "@", " ", "\t", "\n", "\x01", "\u3000", "＝", "a", "1"]
    for n in range(5):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            cell = escape_cell(text)
            assert not runs_as_formula(cell), (text, cell)
            assert unescape_cell(cell) == text, (text, cell)
            assert cell == text or cell == "'" + text  # only ever one quote added


def test_the_sets_are_the_rules_the_comments_state():
    every = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    folded = {c for c in every if unicodedata.normalize("NFKC", c)[:1] in ("=", "+", "-", "@")}
    assert set(FORMULA_SIGNS) == folded | {"\t", "\r", "\n", "\x00"}
    assert set(LEADING_SPACE) == {c for c in every if c <= " " or c.isspace()} - set(FORMULA_SIGNS)


def test_the_page_uses_the_same_pattern():
    js = (ROOT / "src" / "jobtitles" / "serve" / "static" / "app.js").read_text(encoding="utf-8")
    assert re.findall(r"^const FORMULA_START = /(.*)/;$", js, flags=re.M) == [FORMULA_START]


# ---- a real run on titles and labels that start with formula signs -------------------------------------------

HOSTILE_TITLES = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "=1+1", "＝1+1",
                  "'=1+1", "Sales =1+1", "\t-Manager"]  # (the loader refuses multi-line titles)
# what the loader makes of them (whitespace collapsed, as for every title) and the cell written for them
LOADED = {'=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
          "@SUM(1+1)": "'@SUM(1+1)", "-2+3": "'-2+3", "=1+1": "'=1+1", "＝1+1": "'＝1+1", "'=1+1": "''=1+1",
          "Sales =1+1": "Sales =1+1", "-Manager": "'-Manager"}
RENAMED = {"Chief Officer": "=Chief Officer", "Owner": "@Owner"}  # label names are text cells too


@pytest.fixture(scope="module")
def hostile_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    rows = [(title, [RENAMED.get(lab, lab) for lab in labels]) for title, labels in sample_rows()]
    for k, title in enumerate(HOSTILE_TITLES):  # every 4th row gets a hostile title, keeping its labels
        rows[4 * k] = (title, rows[4 * k][1])
    rows.append(("=1+1", rows[16][1]))  # a duplicate of row 18: dropped_rows.csv names it
    folder = tmp_path_factory.mktemp("hostile")
    train = folder / "titles.csv"
    with open(train, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(["Title", "Column 1", "Column 2", "Column 3"])
        w.writerows([title, *labels, *[""] * (3 - len(labels))] for title, labels in rows)
    from jobtitles.cli import train_main

    out = folder / "run"
    assert train_main(tiny_train_argv(train, tiny_model_dir, out, "--baseline", "false",
                                      "--min_train_steps", "0", "--num_train_epochs", "1")) == 0
    return out, train


def read_cells(path: Path) -> list[dict[str, str]]:
    """The cells exactly as a spreadsheet gets them (no unescaping)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def label_cell(labels: str) -> str:
    return "'" + labels if labels[:1] in ("=", "@") else labels  # "=Chief Officer" / "@Owner" sort first


def test_run_csvs_hold_neutralised_cells_and_read_back_exactly(hostile_run):
    run, _ = hostile_run
    oof = read_cells(run / "oof_predictions.csv")
    titles, rows, y, labels, scores, pred = li.read_oof_predictions(run / "oof_predictions.csv")
    assert labels[:2] == ["=Chief Officer", "@Owner"]
    assert sorted(t for t in titles if t in LOADED) == sorted(LOADED)
    for cells, title, yi, pi in zip(oof, titles, y, pred):
        assert cells["title"] == LOADED.get(title, title)
        gold, got = (" | ".join(labels[j] for j in np.flatnonzero(v)) for v in (yi, pi))
        assert (cells["gold"], cells["predicted"]) == (label_cell(gold), label_cell(got))
        assert not cells["score:=Chief Officer"].startswith("'")  # numbers as they are
    assert any(c["gold"].startswith("'=Chief Officer") for c in oof) and any(c["gold"] == "'@Owner" for c in oof)

    issues = read_cells(run / "label_issues.csv")
    restored = {int(r["row"]): r for r in li.read_label_issues(run / "label_issues.csv")}
    assert len(issues) == len(titles)
    for cells in issues:
        back = restored[int(cells["row"])]
        assert cells["title"] == LOADED.get(back["title"], back["title"])
        for col in ("given", "suggested", "missing", "extra"):
            assert cells[col] == label_cell(back[col])
        assert cells["quality"] == back["quality"] and cells["kind"] == back["kind"]
    assert {r["title"] for r in restored.values()} == set(titles)
    assert (run / "dropped_rows.csv").read_text(encoding="utf-8") == "row;reason\n87;duplicate of row 18\n"


def test_export_parity_scores_the_titles_as_trained(hostile_run):
    from jobtitles.predict.export import parity_rows

    run, _ = hostile_run
    titles, gold = parity_rows(run / "model", None)
    trained = li.read_oof_predictions(run / "oof_predictions.csv")[0]
    assert titles == trained and set(LOADED) <= set(titles)  # "=1+1" is scored as "=1+1", not as "'=1+1"
    assert ["=Chief Officer"] in gold and ["=Chief Officer", "@Owner"] in gold


def test_relabel_reads_escaped_cells_and_writes_the_training_schema_verbatim(hostile_run, tmp_path, capsys):
    import shutil

    from jobtitles.reporting.relabel import main as relabel_main

    run = tmp_path / "run"
    shutil.copytree(hostile_run[0], run)
    titles, rows, y, labels, scores, pred = li.read_oof_predictions(run / "oof_predictions.csv")
    pick = [titles.index("=1+1"), titles.index("-2+3")]
    pred = np.array(pred, copy=True)
    pred[pick] = 0
    pred[pick, 0] = 1  # suggest "=Chief Officer" for both
    li.write_label_issues(run, li.find_label_issues(titles, rows, y, labels, scores, pred, use_cleanlab=False))
    accept = tmp_path / "rows.txt"
    accept.write_text("".join(f"{rows[i]}\n" for i in pick), encoding="utf-8")
    assert relabel_main(["--run", str(run), "--accept", str(accept)]) == 0, capsys.readouterr().err
    lines = (run / "corrected.csv").read_text(encoding="utf-8").splitlines()
    assert lines[rows[pick[0]] - 1] == "=1+1;=Chief Officer;;"  # the training schema: no quote added anywhere
    assert lines[rows[pick[1]] - 1] == "-2+3;=Chief Officer;;"


def test_predict_csv_neutralised_and_jsonl_verbatim(hostile_run, tmp_path, capsys):
    from jobtitles.cli import predict_main

    run, _ = hostile_run
    src = tmp_path / "in.csv"
    with open(src, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerows([["Title"], *([t] for t in HOSTILE_TITLES)])
    outputs = {ext: tmp_path / f"pred.{ext}" for ext in ("csv", "jsonl")}
    for out in outputs.values():
        assert predict_main(["--model", str(run / "model"), "--input", str(src), "--output", str(out)]) == 0
    records = [json.loads(line) for line in outputs["jsonl"].read_text(encoding="utf-8").splitlines()]
    assert [r["title"] for r in records] == list(LOADED)  # verbatim (as loaded)
    cells = read_cells(outputs["csv"])
    assert [c["title"] for c in cells] == list(LOADED.values())
    assert [c["predicted"] for c in cells] == [label_cell(" | ".join(r["labels"])) for r in records]
    assert [c["row"] for c in cells] == [str(r["row"]) for r in records]
    assert all(float(c["score:=Chief Officer"]) == pytest.approx(r["scores"]["=Chief Officer"], abs=1e-4)
               for c, r in zip(cells, records))
    text = io.StringIO(outputs["csv"].read_text(encoding="utf-8"))
    assert next(csv.reader(text, delimiter=";"))[:4] == ["row", "title", "predicted", "score:=Chief Officer"]
