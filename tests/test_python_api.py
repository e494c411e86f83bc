"""The Python API a notebook uses: TitleClassifier's Prediction objects, `clf(...)`, `predict_df`, the docstring
examples (run for real on the tiny trained model) and predict.py's delimiter hint."""

from __future__ import annotations

import doctest
import io
import sys

import numpy as np
import pytest

from jobtitles.core.errors import UserError
from jobtitles.predict import inference
from jobtitles.predict.inference import Prediction, TitleClassifier

TITLES = ["VP of Sales", "CEO & Founder", "Senior Software Engineer", "Head of Engineering"]


@pytest.fixture(scope="module")
def clf(tiny_run_dir) -> TitleClassifier:
    return TitleClassifier(tiny_run_dir / "model", backend="torch")


def test_docstring_examples_run(tiny_run_dir, clf, tmp_path, monkeypatch):
    """Every `>>>` example of inference.py, run where `outputs/base/model` is the tiny run's model folder (the
    path the examples show); method examples use `clf` like the class example builds it."""
    (tmp_path / "outputs" / "base").mkdir(parents=True)
    (tmp_path / "outputs" / "base" / "model").symlink_to(tiny_run_dir / "model", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    finder, out = doctest.DocTestFinder(), io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tested = []
    for test in finder.find(inference, globs={**vars(inference), "clf": clf}):
        if test.examples:
            tested.append(test.name.removeprefix("jobtitles.predict.inference."))
            runner.run(test, out=out.write)
    assert sorted(tested) == ["Prediction", "TitleClassifier", "TitleClassifier.__call__",
                              "TitleClassifier.classify", "TitleClassifier.predict_df", "jobtitles.predict.inference"]
    assert runner.failures == 0, out.getvalue()


def test_call_and_classify_give_labels_and_scores_together(clf):
    preds = clf(TITLES)
    assert [type(p) for p in preds] == [Prediction] * len(TITLES)
    assert [p.title for p in preds] == TITLES
    assert [p.labels for p in preds] == clf.predict(TITLES)
    scores = clf.predict_scores(TITLES)
    assert [list(p.scores) for p in preds] == [clf.labels] * len(TITLES)
    np.testing.assert_array_equal(np.array([list(p.scores.values()) for p in preds], dtype=np.float32), scores)
    one = clf("VP of Sales")
    assert clf.classify("VP of Sales") == one
    # alone it is not padded: fp32 kernels may round its scores differently in the last bits (AVX2 CPUs do)
    assert (one.title, one.labels, one.truncated) == (preds[0].title, preds[0].labels, preds[0].truncated)
    np.testing.assert_allclose(list(one.scores.values()), list(preds[0].scores.values()), rtol=0, atol=1e-6)
    cut = clf("Director " * 200)  # 1800 characters: the model reads a part (MAX_TITLE_CHARS, max_length)
    assert cut.truncated is True and one.truncated is False
    assert clf(["  ", ""])[0].labels == [] and clf([]) == []


def test_predict_df_labels_scores_and_index(clf):
    import pandas as pd

    df = pd.DataFrame({"Title": [TITLES[0], None, TITLES[1], "  \u200b ", float("nan"), TITLES[2], "", TITLES[3]],
                       "id": list("abcdefgh")}, index=[70, 10, 60, 20, 50, 30, 40, 0])
    before = df.copy()
    out = clf.predict_df(df)
    pd.testing.assert_frame_equal(df, before)  # the input is not changed
    assert out is not df and out.index.tolist() == [70, 10, 60, 20, 50, 30, 40, 0]
    assert list(out.columns) == ["Title", "id", "labels", *(f"score:{lab}" for lab in clf.labels)]
    assert out["id"].tolist() == list("abcdefgh")
    filled = ["" if not isinstance(t, str) else t for t in df["Title"]]
    assert out["labels"].tolist() == clf.predict(filled)
    blank = [1, 3, 4, 6]
    assert [out["labels"].iloc[i] for i in blank] == [[]] * 4
    got = out[[f"score:{lab}" for lab in clf.labels]].to_numpy()
    assert np.isnan(got[blank]).all()
    kept = [0, 2, 5, 7]
    np.testing.assert_array_equal(got[kept], clf.predict_scores(TITLES))


def test_predict_df_other_column_and_repeated_index(clf):
    import pandas as pd

    df = pd.DataFrame({"job": [TITLES[1], TITLES[0]]}, index=["x", "x"])
    out = clf.predict_df(df, column="job")
    assert out.index.tolist() == ["x", "x"] and out["labels"].tolist() == clf.predict([TITLES[1], TITLES[0]])
    assert len(clf.predict_df(df.iloc[:0], column="job")) == 0


def test_predict_df_refuses_bad_input(clf, monkeypatch):
    import pandas as pd

    df = pd.DataFrame({"title": ["CEO"], "n": [1]})
    with pytest.raises(UserError) as err:
        clf.predict_df(df)
    assert str(err.value) == ("predict_df: column 'Title' not found; the DataFrame has columns ['title', 'n']; pass "
                              "column=<the title column>")
    clash = pd.DataFrame({"Title": ["CEO"], "labels": [1]})
    with pytest.raises(UserError, match=r"already has column\(s\) \['labels'\], which predict_df adds; rename"):
        clf.predict_df(clash)
    with pytest.raises(UserError, match=r"takes a pandas DataFrame, found list"):
        clf.predict_df(["CEO"])  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pandas", None)  # as where pandas is not installed
    with pytest.raises(UserError) as err:
        clf.predict_df(df)
    assert str(err.value) == ('predict_df needs pandas, which is not installed: pip install pandas (or the spark '
                              'extra: pip install "jobtitles[spark]")')


def test_rule_attributes(clf):
    assert clf.at_least_one is clf.rule.at_least_one and clf.label_groups == clf.rule.groups
    assert clf.exclusive_label is None or clf.exclusive_label in clf.labels


# --- predict.py: the CSV reader's delimiter hint in command-line syntax -----------------------------------------
@pytest.mark.parametrize("name,header,flag", [
    ("t.csv", "Title,Column 1", "run with `--delimiter ,`"),
    ("t.csv", "Title|Column 1", "run with `--delimiter '|'`"),
    ("t.csv", "Title\tColumn 1", "run with `--delimiter $'\\t'`"),
    ("t.tsv", "Title,Column 1", "rename it to .csv and run with `--delimiter ,`"),
])
def test_predict_delimiter_hint_uses_the_flag(tmp_path, name, header, flag):
    from jobtitles.predict.predict_cli import build_parser, input_chunks

    path = tmp_path / name
    path.write_text(f"{header}\nCEO\n", encoding="utf-8")
    args = build_parser().parse_args(["--model", str(tmp_path), "--input", str(path)])
    with pytest.raises(UserError) as err:
        next(input_chunks(args, []))
    expected = "\t" if name.endswith(".tsv") else ";"
    assert str(err.value).endswith(f"is expected; re-save with '{expected}' between fields or {flag}")
    assert "delimiter:" not in str(err.value)


def test_train_delimiter_hint_names_the_key_and_the_flag(tmp_path):
    from jobtitles.core.data import read_rows

    path = tmp_path / "t.csv"
    path.write_text("Title,Column 1\nCEO,Chief Officer\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        read_rows(path)
    assert str(err.value).endswith("re-save with ';' between fields or set `delimiter: \",\"` in the config or "
                                   "pass `--delimiter ,`")


def test_upload_delimiter_hint_only_asks_to_resave(tmp_path):
    """The page's upload has no delimiter setting: its message names no flag and no config key."""
    from jobtitles.core.data import load_titles

    path = tmp_path / "t.csv"
    path.write_text("Title,Column 1\nCEO,Chief Officer\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_titles(path, fix="resave")
    assert str(err.value).endswith("looks comma-delimited but ';' is expected; re-save with ';' between fields")
