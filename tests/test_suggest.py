"""`jobtitles suggest`: which pool titles to label next (issue 30). The choice's parts on arrays, then the
command on the tiny trained run: n distinct titles, none from the training data, in the training schema,
deterministic for a seed; near-duplicates never together; frequency; cold start; refusals."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from jobtitles.active import choose
from jobtitles.active.pool import PoolReading, read_pool
from jobtitles.active.suggest import SuggestArgs, candidates, suggest
from jobtitles.active.suggest_cli import EXTRA_COLUMNS, csv_text
from jobtitles.core.data import load_labeled_csv
from jobtitles.core.errors import UserError
from jobtitles.core.training_schema import SCHEMA_KEY, TrainingSchema


# --- the parts ---------------------------------------------------------------------------------------------
def test_threshold_closeness_is_one_on_the_threshold_and_zero_at_the_ends():
    scores = np.array([[0.30, 0.90], [0.15, 0.10], [1.0, 0.0]])
    close, label = choose.threshold_closeness(scores, np.array([0.30, 0.50]))
    # row 0: on label 0's threshold; row 1: 0.15 is halfway below 0.30 (0.5), 0.10 is 0.2 of the way (0.2)
    assert close.tolist() == pytest.approx([1.0, 0.5, 0.0]) and label[:2].tolist() == [0, 0]


def test_group_closeness_is_one_minus_the_gap_of_the_two_best_members():
    scores = np.array([[0.50, 0.45, 0.05, 0.9], [0.9, 0.05, 0.05, 0.1]])
    gap, pair = choose.group_closeness(scores, [np.array([0, 1, 2])])
    assert gap.tolist() == pytest.approx([0.95, 0.15]) and pair[0].tolist() == [0, 1]


def test_frequency_weighs_up_a_title_that_occurs_often_and_disagreement_doubles():
    unsure = np.array([0.5, 0.5, 0.5])
    values = choose.title_values(unsure, np.array([0.0, 0.0, 1.0]), np.array([1, 10_000, 1]))
    assert values.tolist() == pytest.approx([0.5, 0.5 * (1 + np.log(10_000)), 1.0])
    assert choose.shortlist(values, 1, seed=0)[:3].tolist() == [1, 2, 0]
    assert choose.title_values(None, None, np.array([1, 3])).tolist() == pytest.approx([1, 1 + np.log(3)])


def test_a_batch_never_holds_two_near_duplicate_texts():
    titles = ["Regional Sales Manager", "Regional Sales Manager - Remote", "regional sales manager (m/w/d)",
              "Chief Financial Officer", "Software Engineer", "Head of Marketing", "Owner"]
    values = np.array([10.0, 9.0, 8.0, 3.0, 2.0, 1.5, 1.0])
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(titles), 8))
    emb[1] = emb[2] = emb[0]  # the encoder also sees them alike: one cluster, but also across clusters below
    picked, forced = choose.diverse_batch(values, emb, choose.near_duplicates(titles), 4, seed=0, near=0.5)
    chosen = [titles[i] for i in picked]
    assert forced == 0 and len(chosen) == 4
    assert sum("sales manager" in t.lower() for t in chosen) == 1 and chosen[0] == "Regional Sales Manager"
    # even when the clusters separate them, the text rule keeps one
    emb2 = rng.normal(size=(len(titles), 8))
    picked2, _ = choose.diverse_batch(values, emb2, choose.near_duplicates(titles), 4, seed=0, near=0.5)
    assert sum("sales manager" in titles[i].lower() for i in picked2) == 1


def test_disagreement_and_the_reason_name_what_each_model_decides():
    from types import SimpleNamespace

    from conftest import make_rule
    from jobtitles.active.suggest import Candidates, Scored, disagreement, reason

    rule = make_rule(["Director", "Manager", "Owner"], [0.5, 0.4, 0.5])
    own = np.array([[0.9, 0.1, 0.1], [0.45, 0.38, 0.1]])
    scored = Scored(shipped=own, own=own, baseline=np.array([[0.8, 0.2, 0.1], [0.1, 0.2, 0.9]]))
    disagree = disagreement(rule, scored)
    assert disagree.tolist() == [0.0, 1.0]
    clf = SimpleNamespace(labels=list(rule.labels), thresholds=np.array(rule.thresholds), decide=rule.decide)
    cand = Candidates(["Director", "Head"], np.array([1, 1204]), 0, 0)
    unsure = choose.uncertainty(own, clf.thresholds, [])
    assert reason(1, cand, clf, scored, unsure, disagree) == \
        "Manager 0.38, threshold 0.40 · the TF-IDF baseline says Owner · 1,204 times in the pool"
    assert reason(0, cand, clf, scored, unsure, disagree) == "Manager 0.10, threshold 0.40 · 1 time in the pool"


# --- the training schema -----------------------------------------------------------------------------------
def test_schema_places_a_family_label_in_its_column_and_writes_the_empty_label_as_no_label():
    schema = TrainingSchema("Title", "Column", ";", 2, "Not Required", (("Director", 0), ("Sales", 1)))
    assert schema.cells(["Sales", "Director"], 2) == ["Director", "Sales"]
    assert schema.cells(["Sales"], 2) == ["", "Sales"]
    assert schema.cells(["Not Required"], 2) == ["", ""]
    assert schema.cells(["Sales", "Owner", "Director"], 2) == ["Director", "Sales", "Owner"]
    assert schema.columns_needed([["Sales", "Owner", "Director"], []]) == 3


@pytest.mark.parametrize("raw", [[1], {"text_column": "Title", "label_column_prefix": "Column", "delimiter": ";;",
                                       "label_columns": 2},
                                 {"text_column": "Title", "label_column_prefix": "Column", "delimiter": ";",
                                  "label_columns": 10 ** 9},
                                 {"text_column": "Title", "label_column_prefix": "Column", "delimiter": ";",
                                  "label_columns": 2, "column_of": {"Nobody": 0}}])
def test_a_hostile_saved_schema_is_refused_in_one_line(raw):
    with pytest.raises(UserError, match=SCHEMA_KEY):
        TrainingSchema.from_config({SCHEMA_KEY: raw}, ["Director", "Sales"], "m/config.json")


# --- the command on the tiny trained run -------------------------------------------------------------------
def pool_titles(tiny_csv: Path) -> tuple[list[str], list[str]]:
    """(the training titles, a pool: some training titles in other spellings, new titles, repeats)."""
    rows = list(csv.reader(open(tiny_csv, encoding="utf-8"), delimiter=";"))[1:]
    train = [r[0] for r in rows]
    new = [f"{lvl} of {area}" for lvl in ("Head", "Lead", "Assistant", "Deputy Director", "Associate VP")
           for area in ("Procurement", "Logistics", "Legal", "Research", "Customer Success", "Payroll")]
    pool = [t.upper() for t in train[:10]] + [f"  {t}  " for t in train[10:20]] + new + ["Head of Payroll"] * 30
    return train, pool + ["=HYPERLINK(\"http://x\",\"Manager\")"]


@pytest.fixture(scope="module")
def run(tiny_run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("suggest") / "run"
    shutil.copytree(tiny_run_dir, out)
    return out


def write_pool(path: Path, titles: list[str]) -> Path:
    path.write_text("\n".join(titles) + "\n", encoding="utf-8")
    return path


def test_suggest_returns_n_distinct_new_titles_deterministically(run, tiny_csv, tmp_path):
    from jobtitles.cli import suggest_main

    train, pool = pool_titles(tiny_csv)
    pool_file = write_pool(tmp_path / "pool.txt", pool)
    outs = []
    for k in range(2):
        out = tmp_path / f"s{k}.csv"
        assert suggest_main(["--model", str(run / "model"), "--pool", str(pool_file), "--n", "8",
                             "--output", str(out), "--seed", "3"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]  # deterministic for a seed
    rows = list(csv.DictReader(open(tmp_path / "s0.csv", encoding="utf-8"), delimiter=";"))
    titles = [r["Title"] for r in rows]
    seen = {" ".join(t.split()).casefold() for t in train}
    assert len(titles) == 8 and len({t.casefold() for t in titles}) == 8
    assert not any(" ".join(t.split()).casefold() in seen for t in titles)  # other spellings of training titles too
    assert not any(t.startswith("=") for t in titles)
    header = next(csv.reader(open(tmp_path / "s0.csv", encoding="utf-8"), delimiter=";"))
    n_cols = len(header) - 1 - len(EXTRA_COLUMNS)
    assert header == ["Title", *[f"Column {i + 1}" for i in range(n_cols)], *EXTRA_COLUMNS] and n_cols == 3  # as the training file
    assert [int(r["rank"]) for r in rows] == list(range(1, 9)) and all(r["reason"] for r in rows)
    assert all(not r[f"Column {i + 1}"] for r in rows for i in range(n_cols))
    counts = {r["Title"]: int(r["pool_count"]) for r in rows}
    assert counts.get("Head of Payroll", 31) == 31 and all(c == 1 for t, c in counts.items() if t != "Head of Payroll")


def test_a_filled_suggestion_file_trains_as_it_is(run, tiny_csv, tmp_path):
    train, pool = pool_titles(tiny_csv)
    suggestions, schema = suggest(SuggestArgs(pool=write_pool(tmp_path / "p.txt", pool), n=5, model=run / "model"))
    text = csv_text(suggestions, schema).splitlines()
    # as a person fills them in: one row left for later, one explicitly given none of the labels
    given = [["Manager"], ["Director", "Manager"], [], ["Not Required"], ["Owner"]]
    filled = [text[0]] + [line.replace(";;;;", ";" + ";".join((labels + ["", "", ""])[:3]) + ";", 1)
                          for line, labels in zip(text[1:], given)]
    (tmp_path / "filled.csv").write_text("\n".join(filled) + "\n", encoding="utf-8")
    data = load_labeled_csv(tmp_path / "filled.csv")  # the extra columns: ignored, with one warning
    assert data.titles == [s.title for k, s in enumerate(suggestions) if k != 2]
    assert data.label_sets == [["Manager"], ["Director", "Manager"], ["Not Required"], ["Owner"]]
    # the row left empty is not trained as "no label": it is dropped and reported
    assert data.dropped == [(4, "not labelled yet (a suggested title with empty label columns)")]


def test_every_pick_has_the_models_labels_and_a_reason_naming_its_score(run, tiny_csv, tmp_path):
    from jobtitles.predict.inference import TitleClassifier

    _, pool = pool_titles(tiny_csv)
    suggestions, _ = suggest(SuggestArgs(pool=write_pool(tmp_path / "p.txt", pool), n=6, model=run / "model"))
    clf = TitleClassifier(run / "model")
    assert [list(s.suggested) for s in suggestions] == clf.predict([s.title for s in suggestions])
    assert all("time" in s.reason and ("threshold" in s.reason or " vs " in s.reason) for s in suggestions)
    assert [s.value for s in suggestions] == sorted((s.value for s in suggestions), reverse=True)


def test_the_pool_is_counted_by_what_the_model_sees(run, tmp_path):
    from jobtitles.predict.inference import TitleClassifier

    clf = TitleClassifier(run / "model")
    pool = read_pool(write_pool(tmp_path / "p.txt", ["Head of Legal", "HEAD OF  LEGAL", "head of legal", "CFO",
                                                     "Head of Legal", "=1+1", "@SUM(A1)"]), PoolReading())
    cand = candidates(pool, clf.tokenizer, clf.max_length, ["cfo"])
    assert cand.titles == ["Head of Legal"] and cand.counts.tolist() == [4] and cand.in_training == 1
    assert cand.formula == 2  # never suggested: a spreadsheet would run them


def test_cold_start_picks_diverse_frequent_titles(tmp_path):
    pool = (["Software Engineer"] * 20 + ["Sales Manager"] * 15 + ["Sales Manager - Remote"] * 14
            + ["Chief Executive Officer"] * 10 + [f"Rare title {i}" for i in range(12)])
    suggestions, schema = suggest(SuggestArgs(pool=write_pool(tmp_path / "p.txt", pool), n=3, near_duplicate=0.5))
    titles = [s.title for s in suggestions]
    # the most frequent first; of the two near-duplicate spellings the more frequent one only; one per cluster
    assert titles[0] == "Software Engineer" and suggestions[0].pool_count == 20 and len(set(titles)) == 3
    assert [t for t in titles if "Sales Manager" in t] == ["Sales Manager"]
    assert all(not s.suggested and "no model yet" in s.reason for s in suggestions)
    assert schema.header(2) == ["Title", "Column 1", "Column 2"]


def test_parquet_and_csv_pools_give_the_same_suggestions(run, tiny_csv, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, pool = pool_titles(tiny_csv)
    pq.write_table(pa.table({"Title": pool}), tmp_path / "p.parquet")
    (tmp_path / "p.csv").write_text("Title;Column 1\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}";\n'
                                                                for t in pool), encoding="utf-8")
    got = [suggest(SuggestArgs(pool=tmp_path / name, n=4, model=run / "model"))[0] for name in ("p.parquet", "p.csv")]
    assert [s.title for s in got[0]] == [s.title for s in got[1]]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from jobtitles.cli import suggest_main

    code = suggest_main(argv)
    return code, capsys.readouterr().err


def test_refusals_are_one_line_and_write_nothing(run, tmp_path, capsys):
    pool = write_pool(tmp_path / "pool.csv", ["Title", "Head of Legal"])
    model = str(run / "model")
    code, err = run_cli(["--model", model, "--pool", str(pool), "--n", "3", "--output", str(pool)], capsys)
    assert code == 2 and "is an input" in err and pool.read_text() == "Title\nHead of Legal\n"
    code, err = run_cli(["--model", model, "--pool", str(pool), "--n", "0", "--output", str(tmp_path / "o.csv")],
                        capsys)
    assert code == 2 and "--n must be" in err and not (tmp_path / "o.csv").exists()
    alone = tmp_path / "alone"
    shutil.copytree(run / "model", alone / "model")  # a copied model folder: no oof_predictions.csv beside it
    code, err = run_cli(["--model", str(alone / "model"), "--pool", str(pool), "--n", "1", "--output",
                         str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "--train_file" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli(["--pool", str(tmp_path / "missing.txt"), "--n", "1", "--output", str(tmp_path / "o.csv")],
                        capsys)
    assert code == 2 and "missing.txt: file not found" in err and not (tmp_path / "o.csv").exists()
