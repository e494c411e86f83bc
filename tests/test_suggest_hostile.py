"""`jobtitles suggest` on hostile input: pools that cost memory out of proportion to their titles, Parquet that
would crash or decompress into gigabytes, seeds KMeans refuses, damaged run folders, saved schemas whose header
a spreadsheet would run, output cells the training loader refuses on reading the filled file back, and a batch
that should not depend on the pool's row order. Cold starts (the embedded encoder) only: no training run."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from jobtitles.active.pool import PoolReading, read_pool
from jobtitles.core.errors import UserError
from jobtitles.core.training_schema import SCHEMA_KEY, TrainingSchema


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from jobtitles.cli import suggest_main

    code = suggest_main(argv)
    return code, capsys.readouterr().err


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def null_parquet(path: Path, rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"Title": pa.concat_arrays([pa.array(["Head of Legal"]), pa.nulls(rows, pa.string())])}),
                   path, compression="zstd")
    return path


@pytest.mark.parametrize("kind", ["txt", "parquet"])
def test_blank_rows_cost_no_memory(tmp_path, kind):
    rows = 1_000_000
    if kind == "txt":
        path = tmp_path / "p.txt"
        path.write_text("Head of Legal\n" + "\n" * rows, encoding="utf-8")
    else:
        path = null_parquet(tmp_path / "p.parquet", rows)  # a few kB on disk
    pool = read_pool(path, PoolReading())
    assert pool.counts == {"Head of Legal": 1} and pool.empty_rows == rows
    assert peak_bytes(lambda: read_pool(path, PoolReading())) < 4_000_000  # listing them: 8-40 bytes a row


def test_a_parquet_that_decompresses_into_a_huge_title_is_refused_unread(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"Title": ["x" * 20_000_000]}), path, compression="zstd", use_dictionary=False)
    assert path.stat().st_size < 100_000
    with pytest.raises(UserError, match="row group 0 holds 20,000,"):
        read_pool(path, PoolReading())


def test_a_parquet_with_two_title_columns_is_one_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["Title", "Title"]),
                   tmp_path / "p.parquet")
    with pytest.raises(UserError, match="2 'Title' columns"):
        read_pool(tmp_path / "p.parquet", PoolReading())


def test_a_parquet_with_a_damaged_page_is_one_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"Title": [f"Title number {i}" for i in range(50_000)]}), path, compression="zstd")
    raw = bytearray(path.read_bytes())
    raw[200:2000] = bytes(b ^ 0x5A for b in raw[200:2000])  # inside the first data page; the footer is intact
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="p.parquet: a damaged Parquet page"):
        read_pool(path, PoolReading())


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_kmeans_refuses_is_one_error_line(tmp_path, capsys, seed):
    (tmp_path / "p.txt").write_text("Head of Legal\nCFO\n", encoding="utf-8")
    code, err = run_cli(["--pool", str(tmp_path / "p.txt"), "--n", "1", "--output", str(tmp_path / "o.csv"),
                         "--seed", seed], capsys)
    assert code == 2 and "--seed must be" in err and not (tmp_path / "o.csv").exists()


def fake_run(tmp_path: Path, oof: str) -> Path:
    """A run folder with a model folder (config.json alone) and an oof_predictions.csv."""
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "run" / "oof_predictions.csv").write_text(oof, encoding="utf-8")
    return tmp_path / "run"


def test_the_run_folders_oof_file_is_an_input_never_overwritten(tmp_path, capsys):
    run = fake_run(tmp_path, "row;title;gold;predicted;correct;score:A\n1;CFO;A;A;1;0.9\n")
    (tmp_path / "p.txt").write_text("Head of Legal\n", encoding="utf-8")
    before = (run / "oof_predictions.csv").read_bytes()
    code, err = run_cli(["--model", str(run / "model"), "--pool", str(tmp_path / "p.txt"), "--n", "1",
                         "--output", str(run / "oof_predictions.csv")], capsys)
    assert code == 2 and "is an input" in err and (run / "oof_predictions.csv").read_bytes() == before


@pytest.mark.parametrize("oof, found", [("", "no titles"), ("row;title;gold;predicted\n", "no titles"),
                                        ("row;title\n1;" + "x" * 200_000 + "\n", "not an oof_predictions.csv")])
def test_a_damaged_oof_file_is_one_user_error(tmp_path, oof, found):
    """An empty or truncated file would otherwise say "no training titles", and every one could be suggested."""
    from jobtitles.active.suggest import SuggestArgs, training_data

    run = fake_run(tmp_path, oof)
    (tmp_path / "p.txt").write_text("Head of Legal\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"oof_predictions.csv: {found}"):
        training_data(SuggestArgs(pool=tmp_path / "p.txt", n=1, model=run / "model"), ["A"])


@pytest.mark.parametrize("change", [{"text_column": "=1+1"}, {"label_column_prefix": "@SUM(A1)"},
                                    {"text_column": "Ti;t;le"}])
def test_a_saved_schema_whose_header_would_run_or_split_is_refused(change):
    raw = {"text_column": "Title", "label_column_prefix": "Column", "delimiter": ";", "label_columns": 2, **change}
    with pytest.raises(UserError, match=SCHEMA_KEY):
        TrainingSchema.from_config({SCHEMA_KEY: raw}, ["Director", "Sales"], "m/config.json")


def test_titles_holding_the_delimiter_twice_are_never_suggested(tmp_path):
    from jobtitles.active.embed import embedded_encoder
    from jobtitles.active.suggest import candidates

    (tmp_path / "p.txt").write_text("Sales; Marketing; Ops Lead\nHead of Legal\nA;B\n", encoding="utf-8")
    _, tokenizer = embedded_encoder()
    cand = candidates(read_pool(tmp_path / "p.txt", PoolReading()), tokenizer, 128, [], ";")
    assert cand.titles == ["A;B", "Head of Legal"] and cand.delimited == 1  # once is a title, twice the loader refuses


def test_a_filled_comma_delimited_file_reads_back(tmp_path, capsys):
    from jobtitles.core.data import load_labeled_csv

    (tmp_path / "p.txt").write_text("Sales Manager\n" * 1200 + "Head of Legal\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    code, _ = run_cli(["--pool", str(tmp_path / "p.txt"), "--n", "2", "--output", str(out), "--delimiter", ","],
                      capsys)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert code == 0 and "1 200 times" in lines[1]  # the reason's own commas: not the delimiter twice
    filled = [lines[0], lines[1].replace(",,,,", ",Manager,,,", 1), lines[2].replace(",,,,", ",Owner,,,", 1)]
    (tmp_path / "filled.csv").write_text("\n".join(filled) + "\n", encoding="utf-8")
    data = load_labeled_csv(tmp_path / "filled.csv", delimiter=",")
    assert data.titles == ["Sales Manager", "Head of Legal"] and data.label_sets == [["Manager"], ["Owner"]]


def test_a_pool_of_formulas_says_so(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("=1+1\n@SUM(A1)\n", encoding="utf-8")
    code, err = run_cli(["--pool", str(tmp_path / "p.txt"), "--n", "1", "--output", str(tmp_path / "o.csv")],
                        capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "2 start with a formula sign" in errors[0]


def test_the_batch_does_not_depend_on_the_pools_row_order(tmp_path, capsys):
    titles = [f"{a} {b}" for a in ("Head of", "Lead", "Deputy", "Assistant", "Chief")
              for b in ("Legal", "Payroll", "Research", "Sales", "Ops", "IT")]
    outs = []
    for k in range(2):
        random.Random(k).shuffle(titles)
        (tmp_path / f"p{k}.txt").write_text("\n".join(titles) + "\n", encoding="utf-8")
        assert run_cli(["--pool", str(tmp_path / f"p{k}.txt"), "--n", "3", "--output", str(tmp_path / f"o{k}.csv")],
                       capsys)[0] == 0
        outs.append((tmp_path / f"o{k}.csv").read_bytes())
    assert outs[0] == outs[1]


def test_many_picks_go_round_the_clusters_when_they_are_capped(monkeypatch):
    import numpy as np

    from jobtitles.active import choose

    monkeypatch.setattr(choose, "MAX_CLUSTERS", 3)
    blobs = np.repeat(np.array([[0.0, 10.0], [10.0, 0.0], [-10.0, -10.0]]), 4, axis=0)
    emb = blobs + np.random.default_rng(0).normal(scale=0.01, size=blobs.shape)
    values = np.array([9.0, 8.9, 8.8, 8.7, 3, 2.9, 2.8, 2.7, 2, 1.9, 1.8, 1.7])  # best first, blob 0 best
    titles = ["Legal", "Payroll", "Research", "Sales", "Ops", "IT", "Chief", "Deputy", "Audit", "Tax", "HR", "PR"]
    picked, forced = choose.diverse_batch(values, emb, choose.near_duplicates(titles), 6, seed=0, near=0.99)
    # two per cluster (the best and second best of each), not blob 0's four best and one of each other
    assert forced == 0 and picked == [0, 1, 4, 5, 8, 9]


def test_clustering_a_large_shortlist_uses_mini_batch_kmeans(monkeypatch):
    """--n 2,000's worth of clusters over 30,000 titles: exact k-means grows to hours at --n 10,000, so above
    EXACT_KMEANS_WORK the mini-batch k-means runs (its cost: bench/active_learning.py, docs/benchmarks.md)."""
    import numpy as np

    from jobtitles.active import choose

    def exact_refused(*args, **kwargs):
        raise AssertionError("exact k-means ran above EXACT_KMEANS_WORK")
    monkeypatch.setattr(choose, "KMeans", exact_refused)
    rng = np.random.default_rng(0)
    emb, values = rng.normal(size=(30_000, 16)), rng.random(30_000)
    labels = choose.cluster(emb, values, choose.MAX_CLUSTERS, seed=0)
    assert len(labels) == 30_000 and len(set(labels.tolist())) > 1_000


def test_model_keys_are_small_digests_made_chunk_by_chunk():
    """A title's identity is what the model sees; kept as 16 bytes, tokenized 2,000 titles at a time, so a pool of
    a million long distinct titles does not hold every token id list at once."""
    from transformers import AutoTokenizer

    from jobtitles.active.suggest import model_keys
    from jobtitles.core.embedded import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
    texts = [f"Head of Legal {i} " + " ".join(f"region{j}" for j in range(i % 7, 150)) for i in range(6_000)]
    keys = model_keys(tokenizer, ["Head of  LEGAL", "head of legal", "CFO"], 128)
    assert [len(k) for k in keys] == [16, 16, 16] and keys[0] == keys[1] != keys[2]
    assert peak_bytes(lambda: model_keys(tokenizer, texts, 128)) < 25_000_000  # all at once: about 50 MB


def test_the_spelling_shown_for_a_title_does_not_depend_on_the_pools_row_order(tmp_path):
    from transformers import AutoTokenizer

    from jobtitles.active.suggest import candidates
    from jobtitles.core.embedded import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir()))  # uncased: one model input
    got = []
    for k, rows in enumerate([["head of legal", "HEAD OF LEGAL", "CFO"], ["CFO", "HEAD OF LEGAL", "head of legal"]]):
        (tmp_path / f"p{k}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        cand = candidates(read_pool(tmp_path / f"p{k}.txt", PoolReading()), tokenizer, 128, [])
        got.append((cand.titles, cand.counts.tolist()))
    assert got[0] == got[1] == (["CFO", "HEAD OF LEGAL"], [1, 2])  # equal counts: the first spelling by code point
