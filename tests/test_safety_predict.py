"""Issue: never lose a user's file, never report success on a run that did nothing (predict.py side)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from jobtitles.cli import predict_main
from jobtitles.core.errors import UserError


@pytest.fixture(scope="module")
def model(tiny_run_dir) -> str:
    return str(tiny_run_dir / "model")


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [l for l in err.splitlines() if l.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err[-2000:]
    return errors[0]


def test_output_equal_to_input_is_refused_and_the_input_kept(model, tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_text("Title\nCEO\nVP of Sales\n")
    assert predict_main(["--model", model, "--input", str(path), "--output", str(path)]) == 2
    assert re.search(r"--output .*in\.csv is the --input file", one_error(capsys))
    assert path.read_text() == "Title\nCEO\nVP of Sales\n"


@pytest.mark.parametrize("make_input", ["missing", "bad_bytes", "bad_quote"])
def test_failed_input_never_touches_an_existing_output(model, tmp_path, capsys, make_input):
    old = tmp_path / "old.csv"
    old.write_text("precious;earlier;predictions\n")
    src = tmp_path / "in.csv"
    if make_input == "bad_bytes":  # fails after the first chunk was predicted
        src.write_bytes(b"Title\n" + b"CEO\n" * 30 + b"Gesch\xe4ftsf\xfchrer\n")
    elif make_input == "bad_quote":
        src.write_text("Title\n" + "CEO\n" * 30 + '"VP\n' + "CTO\n" * 5)
    assert predict_main(["--model", model, "--input", str(src), "--output", str(old), "--chunk_size", "10"]) == 2
    one_error(capsys)
    assert old.read_text() == "precious;earlier;predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["old.csv"] + (["in.csv"] if make_input != "missing" else []))


@pytest.mark.parametrize("argv,pattern", [
    (["--batch_size", "-1", "CEO"], r"--batch_size must be at least 1, found -1"),
    (["--batch_size", "0", "CEO"], r"--batch_size must be at least 1, found 0"),
    (["--chunk_size", "0", "CEO"], r"--chunk_size must be at least 1, found 0"),
    (["--threshold", "2.0", "CEO"], r"--threshold must be between 0 and 1 \(exclusive\), found 2\.0"),
    (["--threshold", "nan", "CEO"], r"--threshold must be between 0 and 1 \(exclusive\), found nan"),
    (["--threshold", "-1", "CEO"], r"--threshold must be between 0 and 1 \(exclusive\), found -1"),
])
def test_bad_predict_flags(model, capsys, argv, pattern):
    assert predict_main(["--model", model, *argv]) == 2
    assert re.search(pattern, one_error(capsys))


def test_output_folder_and_titles_with_input(model, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("CEO\n")
    assert predict_main(["--model", model, "--input", str(src), "--output", str(tmp_path)]) == 2
    assert re.search(r"is a folder; give a file name", one_error(capsys))
    assert predict_main(["--model", model, "--input", str(src), "VP of Sales"]) == 2
    assert re.search(r"got 1 titles as arguments and --input .*in\.txt; give one or the other", one_error(capsys))


def test_model_folder_without_tokenizer_files_is_refused(model, tmp_path):
    from jobtitles import TitleClassifier

    bare = tmp_path / "model"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(model) / name, bare / name)
    with pytest.raises(UserError, match=r"the tokenizer has \d+ tokens but the model expects 30522"):
        TitleClassifier(bare)


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_damaged_weights_are_one_line(model, tmp_path, capsys, damage):
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    weights = broken / "model.safetensors"
    if damage == "missing":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        weights.write_bytes(b"not a safetensors file at all" * 10)
    assert predict_main(["--model", str(broken), "CEO"]) == 2
    assert re.search(r"model: the model weights do not load .*re-copy it or retrain", one_error(capsys))


def test_huge_csv_field_is_one_line_with_its_row(model, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Title\nCEO\n" + "x" * 200_000 + "\n")
    assert predict_main(["--model", model, "--input", str(src)]) == 2
    assert re.search(r"in\.csv: malformed CSV at row 3 \(field larger than field limit", one_error(capsys))


def test_long_title_on_a_model_with_few_positions(model, tmp_path):
    import json
    import shutil

    from jobtitles import TitleClassifier

    folder = tmp_path / "model"  # a folder whose tokenizer says 512 (not saved by train.py, which says 16 here)
    shutil.copytree(model, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 512}))
    clf = TitleClassifier(folder)  # the tiny model has 64 positions
    assert clf.max_length == 64
    labels = clf.predict(["Senior " * 300 + "Director"])
    assert len(labels) == 1 and set(labels[0]) <= set(clf.labels) and labels[0]


def test_predict_empty_list_returns_empty(model):
    from jobtitles import TitleClassifier

    clf = TitleClassifier(model)
    assert clf.predict([]) == [] and clf.predict_scores([]).shape == (0, len(clf.labels))


BLANKS = ["", "   ", "\u200b\u200d", "\x00\x07", "\t\u2060"]  # nothing visible: spaces, controls, zero-width


def test_one_rule_for_empty_titles_on_every_path(model, capsys):
    """Python, predict.py, Spark's function and the HTTP check agree on which titles are empty (titles.is_blank),
    and none of them gives such a title a label."""
    from jobtitles import TitleClassifier
    from jobtitles.core.titles import is_blank
    from jobtitles.predict.spark import make_predict_fn_factory
    from jobtitles.serve.app import _text_problem

    assert all(map(is_blank, BLANKS)) and not any(map(is_blank, ["CEO", "\u00b7", "\u0663", "e\u0301"]))
    clf = TitleClassifier(model)
    assert clf.predict([*BLANKS, "CEO"])[:-1] == [[]] * len(BLANKS) and clf.predict("CEO") and clf.predict("") == []
    spark_fn = make_predict_fn_factory(model, "torch", 8, False)()
    assert spark_fn(np.array([*BLANKS, None, "CEO"], dtype=object))["valid"].tolist() == [0] * 6 + [1]
    assert [_text_problem(t)[0] for t in BLANKS] == ["empty_title"] * len(BLANKS) and _text_problem("CEO") is None
    assert predict_main(["--model", model, *BLANKS, "CEO"]) == 0
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == ["CEO"]
    assert f"skipped {len(BLANKS)} empty titles (rows 1, 2, 3, 4, 5)" in err


def test_empty_titles_on_the_command_line_are_skipped_and_reported(model, capsys):
    assert predict_main(["--model", model, "CEO", "", "   ", "VP of Sales"]) == 0
    out, err = capsys.readouterr()
    assert [l.split("\t")[0] for l in out.strip().splitlines()] == ["CEO", "VP of Sales"]
    assert "skipped 2 empty titles (rows 2, 3)" in err


def test_file_input_reports_empty_rows(model, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("Title;Column 1\nCEO;Chief Officer\n;Manager\nVP;Vice President\n")
    out = tmp_path / "p.jsonl"
    assert predict_main(["--model", model, "--input", str(src), "--output", str(out)]) == 0
    assert "skipped 1 empty titles (rows 3)" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2


def test_utf16_and_tsv_input(model, tmp_path, capsys):
    u16 = tmp_path / "u.csv"
    u16.write_text("Title;Column 1\nCEO;Chief Officer\nVP;Vice President\n", encoding="utf-16")
    assert predict_main(["--model", model, "--input", str(u16)]) == 2
    assert re.search(r"UTF-16 byte-order mark but utf-8 is expected", one_error(capsys))
    assert predict_main(["--model", model, "--input", str(u16), "--encoding", "utf-16"]) == 0
    assert [l.split("\t")[0] for l in capsys.readouterr().out.strip().splitlines()] == ["CEO", "VP"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("Title\tColumn 1\nCEO\tChief Officer\nVP of Sales\tVice President\n")
    assert predict_main(["--model", model, "--input", str(tsv)]) == 0
    assert [l.split("\t")[0] for l in capsys.readouterr().out.strip().splitlines()] == ["CEO", "VP of Sales"]


class InterruptedStdin:
    """Standard input that delivers `n` lines, then the user presses Ctrl-C."""

    def __init__(self, n: int) -> None:
        self.n = n

    def isatty(self) -> bool:
        return False

    def __iter__(self):
        for i in range(self.n):
            yield f"Title number {i}\n"
        raise KeyboardInterrupt


def test_stdin_is_streamed_in_chunks_and_an_interrupted_run_keeps_its_rows(model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", InterruptedStdin(25))
    out = tmp_path / "p.csv"
    assert predict_main(["--model", model, "--input", "-", "--output", str(out), "--chunk_size", "10"]) == 130
    err = capsys.readouterr().err
    partial = tmp_path / "p.csv.partial"
    assert not out.exists() and partial.is_file()
    assert len(partial.read_text().splitlines()) == 1 + 20  # header + two finished chunks
    assert f"kept 20 predictions in {partial}" in err
    assert "interrupted" in err and "fold" not in err


def test_stdin_complete_run_renames_into_place(model, tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("CEO\n\nVP of Sales\n"))
    out = tmp_path / "p.jsonl"
    assert predict_main(["--model", model, "--output", str(out), "--chunk_size", "1"]) == 0
    assert [l.count('"title"') for l in out.read_text().splitlines()] == [1, 1]
    assert not (tmp_path / "p.jsonl.partial").exists()
    assert "skipped 1 empty titles (rows 2)" in capsys.readouterr().err


def test_predictions_csv_columns(model, tmp_path):
    import csv

    from jobtitles import TitleClassifier

    src = tmp_path / "in.txt"
    src.write_text("VP of Sales\nCEO\n")
    out = tmp_path / "p.csv"
    assert predict_main(["--model", model, "--input", str(src), "--output", str(out)]) == 0
    clf = TitleClassifier(model)
    with open(out, encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0] == ["row", "title", "predicted", *[f"score:{lab}" for lab in clf.labels]]
    scores = clf.predict_scores(["VP of Sales", "CEO"])
    for r, title, s, labels in zip(rows[1:], ["VP of Sales", "CEO"], scores, clf.predict(["VP of Sales", "CEO"])):
        assert r[:3] == [str(["VP of Sales", "CEO"].index(title) + 1), title, " | ".join(labels)]
        assert [float(v) for v in r[3:]] == pytest.approx(s.tolist(), abs=1e-4)
