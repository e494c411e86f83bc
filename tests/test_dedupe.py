"""Each distinct model input is scored once, with the answers of scoring every row: in TitleClassifier (and so in
predict.py, Spark's batches and serve), bounded by the chunk it is given; predict.py's progress total and its final
line; serve's cache of recent titles."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jobtitles.core.dedupe import compose, distinct_rows

# variant -> what an uncased WordPiece tokenizer makes of it (case and spacing go, punctuation stays)
MODEL_INPUT = {"VP of Sales": 0, "vp  of   SALES": 0, "VP of Sales ": 0, "VP of Sale": 1, "Software Engineer": 2,
               "software engineer": 2, "Chief Executive Officer": 3, "Dir. Marketing": 4, "Dir Marketing": 5}
VARIANTS = list(MODEL_INPUT)


def test_distinct_rows_group_in_first_seen_order():
    d = distinct_rows(["b", "a", "b", "c", "a"])
    assert d.first.tolist() == [0, 1, 3] and d.inverse.tolist() == [0, 1, 0, 2, 1]
    assert d.expand(np.array([10, 20, 30])).tolist() == [10, 20, 10, 30, 20]
    inner = distinct_rows(["x", "y", "x"])  # over the 3 distinct strings b, a, c: b and c are one input
    both = compose(d, inner)
    assert both.first.tolist() == [0, 1] and both.inverse.tolist() == [0, 1, 0, 0, 1]


@pytest.fixture(scope="module")
def transformer_only(tiny_run_dir, tmp_path_factory) -> Path:
    """The tiny run's model without its TF-IDF baseline: every label scored by the transformer."""
    folder = tmp_path_factory.mktemp("transformer-only") / "model"
    shutil.copytree(tiny_run_dir / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("decision_score_sources", None)
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "baseline.skops").unlink(missing_ok=True)
    return folder


def counting(clf) -> list[int]:
    """Rows the model is asked to score, per forward call."""
    calls: list[int] = []
    forward = clf._forward

    def counted(batch):
        calls.append(len(batch["input_ids"]))
        return forward(batch)

    clf._forward = counted
    return calls


def one_by_one(clf, titles):
    return np.vstack([clf.score_titles([t])[0] for t in titles])


def test_the_model_sees_each_distinct_input_once_and_answers_as_row_by_row(transformer_only):
    from jobtitles import TitleClassifier

    clf = TitleClassifier(transformer_only)
    assert clf._baseline is None
    rows = VARIANTS * 7 + ["  ", "x" * 3000]  # a blank title and one cut at MAX_TITLE_CHARS ride along
    calls = counting(clf)
    scores, cut = clf.score_titles(rows)
    # the uncased tokenizer makes case and spacing variants one input; "VP of Sale" and "Dir Marketing" differ
    assert sum(calls) == clf.last_counts[1] == 6 + 2 and clf.last_counts[0] == len(rows)
    np.testing.assert_allclose(scores, one_by_one(clf, rows), atol=1e-6)
    assert cut == [False] * (len(rows) - 1) + [True]
    assert clf.predict(rows) == [clf.predict(t) for t in rows]


def test_with_the_tfidf_baseline_only_equal_texts_share_an_answer(tiny_run_dir):
    """The baseline reads the text, not the token ids: inputs with other text stay apart."""
    from jobtitles import TitleClassifier

    clf = TitleClassifier(tiny_run_dir / "model")
    assert clf._baseline is not None, "the tiny run scores some labels with its baseline"
    rows = VARIANTS * 3
    calls = counting(clf)
    scores, _ = clf.score_titles(rows)
    assert sum(calls) == len(set(VARIANTS)) == clf.last_counts[1]
    np.testing.assert_allclose(scores, one_by_one(clf, rows), atol=1e-6)


def run_predict(argv: list[str]) -> tuple[int, str]:
    from jobtitles.predict.predict_cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def test_predict_py_dedupes_per_chunk_bounded_with_identical_output(tmp_path, transformer_only, monkeypatch):
    from jobtitles.predict import inference

    rng = np.random.default_rng(0)
    titles = [VARIANTS[i] for i in rng.integers(0, len(VARIANTS), 1000)]
    src = tmp_path / "titles.txt"
    src.write_text("\n".join(titles) + "\n", encoding="utf-8")
    sizes: list[int] = []
    real = inference.distinct_rows
    monkeypatch.setattr(inference, "distinct_rows", lambda keys: sizes.append(len(keys)) or real(keys))
    code, err = run_predict(["--model", str(transformer_only), "--input", str(src), "--output",
                             str(tmp_path / "chunked.csv"), "--chunk_size", "100", "--cache_titles", "0"])
    assert code == 0 and max(sizes) <= 100  # never more keys in memory than one chunk's rows
    distinct = sum(len({MODEL_INPUT[t] for t in titles[i:i + 100]}) for i in range(0, 1000, 100))
    assert f"wrote 1000 predictions" in err
    assert f"; {distinct} distinct model inputs scored (each once per chunk of 100)" in err
    assert "/1000" in err  # the progress bar has its total
    code, err = run_predict(["--model", str(transformer_only), "--input", str(src), "--output",
                             str(tmp_path / "cached.csv"), "--chunk_size", "100", "--cache_titles", "50"])
    assert code == 0 and "; 6 distinct model inputs scored (a cache of the 50 most recent titles" in err
    monkeypatch.setattr(inference, "distinct_rows", lambda keys: real(list(range(len(keys)))))  # no grouping
    code, _ = run_predict(["--model", str(transformer_only), "--input", str(src), "--output",
                           str(tmp_path / "every_row.csv"), "--cache_titles", "0"])
    assert code == 0
    every = (tmp_path / "every_row.csv").read_text()
    assert (tmp_path / "chunked.csv").read_text() == every == (tmp_path / "cached.csv").read_text()


def test_expected_rows_for_the_progress_total(tmp_path):
    from jobtitles.predict.predict_cli import expected_rows

    (tmp_path / "a.csv").write_bytes(b"Title\nCEO\nCFO\n")
    (tmp_path / "b.txt").write_bytes(b"CEO\nCFO")  # no final line break
    (tmp_path / "c.csv").write_text("Title\nCEO\n", encoding="utf-16")
    assert expected_rows(str(tmp_path / "a.csv")) == 2 and expected_rows(str(tmp_path / "b.txt")) == 2
    assert expected_rows(str(tmp_path / "c.csv")) is None and expected_rows("-") is None
    assert expected_rows(None) is None


def test_a_cache_of_recent_titles_answers_without_the_model_and_stays_bounded(transformer_only):
    from jobtitles import TitleClassifier
    from jobtitles.core.dedupe import RecentTitles

    cache = RecentTitles(3)
    clf, plain = TitleClassifier(transformer_only, cache=cache), TitleClassifier(transformer_only)
    cache.items.clear()  # the load-time probe title
    cache.hits = cache.misses = 0
    calls = counting(clf)
    first = clf.score_titles(["CEO", "Software Engineer", "CEO"])
    assert sum(calls) == 2  # duplicates inside one call: grouped
    again = clf.score_titles(["Software Engineer", "CFO", "CEO"])
    assert sum(calls) == 3  # only the title not scored before
    for got, titles in ((first, ["CEO", "Software Engineer", "CEO"]), (again, ["Software Engineer", "CFO", "CEO"])):
        want = plain.score_titles(titles)
        np.testing.assert_allclose(got[0], want[0], atol=1e-6)
        assert got[1] == want[1]
    clf.score_titles(["COO"])  # a fourth distinct title: the least recently used one (Software Engineer) goes
    assert list(cache.items) == ["CEO", "CFO", "COO"]
    assert (cache.hits, cache.misses) == (2, 4)  # one lookup per distinct title of a call
    long = "Director " * 200  # cut at max_length tokens: the cached answer says so too
    assert clf.score_titles([long])[1] == clf.score_titles([long])[1] == [True]
