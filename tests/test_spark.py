"""Spark labeling (jobtitles.predict.spark, jobtitles.predict.spark_predict) in local[2] mode, real pyspark + Java, offline."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import LEVELS, write_csv

# pyspark and Java are real dependencies here (the spark extra, default-jre-headless in CI): no skip.


def titles_300() -> list[str]:
    base = [t for ts in LEVELS.values() for t in ts]
    forms = ["{}", "Senior {}", "{} EMEA", "Global {}, APAC", "Interim {} (Remote)", "{} - North America",
             "Deputy {}", "{} #{i}"]
    return [f.format(t, i=i) for i, (f, t) in enumerate((f, t) for f in forms for t in base)]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers use this venv
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no lookup of the machine's name: runs offline
    session = (SparkSession.builder.master("local[2]").appName("jobtitles-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.executorEnv.HF_HUB_OFFLINE", "1")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "128")  # several Arrow batches per task
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def model_dir(tiny_run_dir) -> Path:
    return tiny_run_dir / "model"


@pytest.fixture(scope="module")
def reference(model_dir):
    from jobtitles.predict.inference import TitleClassifier

    return TitleClassifier(model_dir, backend="torch")


def label_df(spark, titles: list, labeler, partitions: int = 2):
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField("id", StringType()), StructField("Title", StringType())])
    df = spark.createDataFrame([(str(i), t) for i, t in enumerate(titles)], schema).repartition(partitions)
    rows = df.withColumn("prediction", labeler("Title")).collect()
    return {int(r["id"]): r["prediction"] for r in rows}


@pytest.fixture(scope="module")
def split_model_dir(model_dir, reference, tmp_path_factory) -> Path:
    """The tiny model gives every title the same label set at its saved thresholds; with each threshold at the
    label's median score over the test titles, label sets differ from title to title, so comparing them means
    something (and the worker must use the saved thresholds to match)."""
    from jobtitles.core.model_folder import THRESHOLDS_KEY

    folder = tmp_path_factory.mktemp("split") / "model"
    shutil.copytree(model_dir, folder)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    medians = np.median(reference.predict_scores(titles_300()), axis=0)
    cfg[THRESHOLDS_KEY] = {lab: float(m) for lab, m in zip(reference.labels, medians)}
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return folder


def test_torch_labels_and_scores_equal_title_classifier(spark, split_model_dir):
    from jobtitles.predict.inference import TitleClassifier
    from jobtitles.predict.spark import title_labeler

    model_dir = split_model_dir
    reference = TitleClassifier(model_dir, backend="torch")
    titles = titles_300()
    blanks = {7: None, 50: "", 123: "   \t ", 301: None}
    mixed = list(titles)
    for pos, val in sorted(blanks.items()):
        mixed.insert(pos, val)
    got = label_df(spark, mixed, title_labeler(model_dir, backend="torch", rows_per_call=100))
    assert len(got) == len(mixed)
    ref_scores = reference.predict_scores(titles)
    ref_sets = [{reference.labels[j] for j in np.flatnonzero(row)} for row in reference.decide(ref_scores)]
    k = 0
    for i, title in enumerate(mixed):
        if i in blanks:
            assert got[i] is None, (i, title, got[i])
            continue
        pred = got[i]
        assert set(pred["labels"]) == ref_sets[k], title
        assert sorted(pred["scores"]) == sorted(reference.labels)
        assert np.allclose([pred["scores"][lab] for lab in reference.labels], ref_scores[k], atol=1e-5, rtol=0)
        k += 1
    assert k == len(titles) >= 300
    assert len({frozenset(s) for s in ref_sets}) >= 5  # several different label sets: a real comparison


def test_onnx_int8_answers_equal_title_classifier_s_in_other_batches(spark, tiny_run_dir, reference, tmp_path):
    """The default (static) int8 export: Spark's partitions and a TitleClassifier batching differently give every
    title the same scores and labels (dynamic int8 scaled activations per batch: 0.46% of label sets differed on
    1,000,000 titles); and both agree with PyTorch on at least 99.5%."""
    from jobtitles.predict.export import export_model
    from jobtitles.predict.inference import TitleClassifier
    from jobtitles.predict.spark import title_labeler

    model_copy = tmp_path / "model"
    shutil.copytree(tiny_run_dir / "model", model_copy)
    export_model(model_copy, int8=True, parity=False, say=lambda line: None)
    titles = titles_300()
    got = label_df(spark, titles, title_labeler(model_copy, backend="onnx-int8", ship=True, spark=spark))
    local = TitleClassifier(model_copy, backend="onnx-int8", batch_size=7)  # other batch-mates than Spark's
    scores = local.predict_scores(titles[::-1])[::-1]
    labels = list(local.labels)
    sets = [{labels[j] for j in np.flatnonzero(row)} for row in local.decide(scores)]
    assert [set(got[i]["labels"]) for i in range(len(titles))] == sets
    spark_scores = np.array([[got[i]["scores"][lab] for lab in labels] for i in range(len(titles))])
    assert np.abs(spark_scores - scores).max() <= 1e-6
    agree = np.mean([set(got[i]["labels"]) == set(ref) for i, ref in enumerate(reference.predict(titles))])
    assert agree >= 0.995, agree


def test_workers_are_offline(spark, model_dir):
    """A worker whose environment lacks HF_HUB_OFFLINE (a cluster node) sets it before loading the model."""
    from jobtitles.predict.spark import make_predict_fn_factory

    make = make_predict_fn_factory(str(model_dir), "torch", 8, shipped=False)

    def in_worker(_):
        saved = os.environ.pop("HF_HUB_OFFLINE", None)
        try:
            labeled = make()(np.array(["VP Sales", None], dtype=object))
            yield os.environ.get("HF_HUB_OFFLINE"), labeled["valid"].tolist()
        finally:
            os.environ.pop("HF_HUB_OFFLINE", None)
            if saved is not None:  # python workers are reused: leave the environment as found
                os.environ["HF_HUB_OFFLINE"] = saved

    assert spark.sparkContext.parallelize([0], 1).mapPartitions(in_worker).collect() == [("1", [1, 0])]


# --- the command ---------------------------------------------------------------------------------------------
def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    from jobtitles.predict.spark_predict import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_csv_to_parquet(spark, model_dir, reference, tmp_path, capsys):
    rows = [(t, []) for t in titles_300()[:40]] + [("", []), ("   ", [])]
    src = write_csv(tmp_path / "in.csv", rows)
    src.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())  # a BOM, as Excel writes it
    out = tmp_path / "labeled.parquet"
    code, err = run_cli(["--model", str(model_dir), "--input", str(src), "--output", str(out)], capsys)
    assert code == 0, err
    assert "labeled 42 rows (2 null/empty titles -> null labels)" in err
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # written to a temporary path, renamed
    df = spark.read.parquet(str(out))
    assert df.columns == ["Title", "Column 1", "Column 2", "Column 3", "prediction"]
    got = {r["Title"]: r["prediction"] for r in df.collect() if r["prediction"] is not None}
    titles = [t for t, _ in rows if t.strip()]
    assert sorted(got) == sorted(titles)
    expected = reference.predict(titles)
    assert all(set(got[t]["labels"]) == set(e) for t, e in zip(titles, expected))
    n_labels = sum(len(e) for e in expected)
    assert f"{n_labels / 40:.3f} labels per row" in err
    # the same output again is refused, with --overwrite it is replaced
    code, err = run_cli(["--model", str(model_dir), "--input", str(src), "--output", str(out)], capsys)
    assert code == 2 and "exists" in err and "--overwrite" in err


def test_cli_parquet_to_csv(spark, model_dir, reference, tmp_path, capsys):
    titles = titles_300()[40:80]
    src = str(tmp_path / "in.parquet")
    spark.createDataFrame([(t, i) for i, t in enumerate(titles)] + [(None, 99)], "job string, n int") \
        .write.parquet(src)
    out = tmp_path / "labeled.csv"
    code, err = run_cli(["--model", str(model_dir), "--input", src, "--output", str(out), "--title_column", "job",
                         "--partitions", "3"], capsys)
    assert code == 0, err
    assert "labeled 41 rows (1 null/empty titles" in err
    df = spark.read.csv(str(out), sep=";", header=True)
    assert df.columns == ["job", "n", "predicted", *[f"score:{lab}" for lab in reference.labels]]
    got = {r["job"]: r for r in df.collect()}
    assert got[None]["predicted"] is None
    scores = reference.predict_scores(titles)
    for t, row, s in zip(titles, reference.predict(titles), scores):
        assert set(got[t]["predicted"].split(" | ")) == set(row)
        assert np.allclose([float(got[t][f"score:{lab}"]) for lab in reference.labels], s, atol=1e-4)


def test_cli_csv_cells_are_spreadsheet_safe_and_parquet_verbatim(spark, model_dir, tmp_path, capsys):
    import csv

    cells_for = {  # title: its CSV cell (jobtitles.core.spreadsheet, the same rule as predict.py's CSV)
        '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
        "@SUM(1+1)": "'@SUM(1+1)", "-2+3": "'-2+3", "\t=1+1": "'\t=1+1", "\r=1+1": "'\r=1+1", " =1+1": "' =1+1",
        "\x01=1+1": "'\x01=1+1", "\uff1d1+1": "'\uff1d1+1", "'=1+1": "''=1+1", "Sales\n=1+1": "Sales\n=1+1",
        "  VP Sales ": "  VP Sales "}  # Spark's CSV writer trimmed spaces and control characters: no longer
    titles = list(cells_for)
    src = str(tmp_path / "in.parquet")
    spark.createDataFrame([(t, "=evil()" if i == 0 else "note", i) for i, t in enumerate(titles)] + [(None, "-1", 99)],
                          "Title string, note string, n int").write.parquet(src)
    for ext in ("csv", "parquet"):
        code, err = run_cli(["--model", str(model_dir), "--input", src, "--output", str(tmp_path / f"out.{ext}"),
                             "--partitions", "1"], capsys)
        assert code == 0, err
    rows = []  # the cells as a spreadsheet gets them
    for part in sorted((tmp_path / "out.csv").glob("part-*.csv")):
        with open(part, encoding="utf-8", newline="") as fh:
            rows += list(csv.DictReader(fh, delimiter=";"))
    by_n = {int(r["n"]): r for r in rows}
    assert [by_n[i]["Title"] for i in range(len(titles))] == [cells_for[t] for t in titles]
    assert by_n[0]["note"] == "'=evil()" and by_n[1]["note"] == "note"  # every text column, the user's too
    assert by_n[99]["note"] == "'-1" and by_n[99]["Title"] == "" and by_n[99]["predicted"] == ""
    assert all(r["predicted"] and r["predicted"][0].isalpha() for n, r in by_n.items() if n != 99)
    parquet = {r["n"]: r for r in spark.read.parquet(str(tmp_path / "out.parquet")).collect()}
    assert [parquet[i]["Title"] for i in range(len(titles))] == titles and parquet[0]["note"] == "=evil()"


@pytest.mark.parametrize("case", ["not_a_model", "missing_column", "onnx_not_exported", "output_is_input"])
def test_cli_errors_before_any_task(spark, model_dir, tmp_path, capsys, case):
    src = str(tmp_path / "in.parquet")
    spark.createDataFrame([("VP Sales",)], "Title string").write.parquet(src)
    out = str(tmp_path / "out.parquet")
    argv = {"not_a_model": ["--model", str(tmp_path), "--input", src, "--output", out],
            "missing_column": ["--model", str(model_dir), "--input", src, "--output", out, "--title_column", "Job"],
            "onnx_not_exported": ["--model", str(model_dir), "--input", src, "--output", out,
                                  "--backend", "onnx-int8"],
            "output_is_input": ["--model", str(model_dir), "--input", src, "--output", src, "--overwrite"]}[case]
    expected = {"not_a_model": "no config.json, so this is not a saved model",
                "missing_column": "no column 'Job'; found columns ['Title']; pass --title_column",
                "onnx_not_exported": "export it first: python -m jobtitles.export --model",
                "output_is_input": "is the input"}[case]
    sc = spark.sparkContext
    sc.setJobGroup(f"schema-{case}", "reading the input's schema alone")
    spark.read.parquet(src).columns
    sc.setJobGroup(f"errors-{case}", "the command up to its error")
    try:
        code, err = run_cli(argv, capsys)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    # no job beyond Spark's own schema read of the input, so no labeling task ran
    schema_jobs = len(sc.statusTracker().getJobIdsForGroup(f"schema-{case}"))
    cli_jobs = len(sc.statusTracker().getJobIdsForGroup(f"errors-{case}"))
    assert cli_jobs <= (schema_jobs if case == "missing_column" else 0), (cli_jobs, schema_jobs)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert not Path(out).exists() and Path(src).is_dir()


def test_title_normalization_is_the_same_in_spark(spark, normalized_run_dir):
    """A model trained with title_normalization: Spark's workers load the folder's tokenizer, so an abbreviated
    title and its written-out form get the same scores, and those of TitleClassifier."""
    from jobtitles.predict.inference import TitleClassifier
    from jobtitles.predict.spark import title_labeler

    model_dir = normalized_run_dir / "model"
    titles = ["SVP Marketing", "Senior Vice President Marketing", "Sr. Dir. Sales", "senior director sales",
              "Referent/in Vertrieb (m/w/d)", "Referent Vertrieb"]
    got = label_df(spark, titles, title_labeler(model_dir, backend="torch"))
    local = TitleClassifier(model_dir)
    labels = list(local.labels)
    scores = np.array([[got[i]["scores"][lab] for lab in labels] for i in range(len(titles))])
    # one model input: equal up to float rounding (the two spellings may sit in other partitions and batches)
    assert np.allclose(scores[0::2], scores[1::2], atol=1e-6, rtol=0)
    assert np.allclose(scores, local.predict_scores(titles), atol=1e-5, rtol=0)
