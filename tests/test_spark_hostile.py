"""Hostile and broken inputs to `python -m jobtitles.spark_predict`: one line `error: ...`, exit code 2, no
traceback, nothing written. Checks that need no Spark come first; the rest share one local session (the
fixtures of test_spark.py); two runs in their own process (each starts a JVM or tries to): a virtual
environment's python run without activating it, and a Java that is not there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobtitles.predict.spark import spark_error_line
from jobtitles.predict.spark_predict import CONNECT_SECONDS, MASTER_FORMS, main
from test_spark import model_dir, run_cli, spark  # noqa: F401 - fixtures (one session per module)

FORMS = f"expected {MASTER_FORMS}"


def one_line(err: str) -> str:
    """The error line, after checking it is the only thing our code printed (Spark's own log lines may come
    before it) and no Python traceback reached the user."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), err
    return lines[-1]


# --- before Spark starts: the command line -----------------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--master", "nonsense://x"], f"--master nonsense://x: {FORMS}, found 'nonsense://x'; fix --master (or leave "
                                   "it out for local[*])"),
    (["--master", "local[0]"], f"--master local[0]: {FORMS}, found 'local[0]'; fix --master (or leave it out for "
                               "local[*])"),
    (["--master", "spark://127.0.0.1:1"], "--master spark://127.0.0.1:1: expected a master that accepts "
                                          "connections, found 127.0.0.1:1 (Connection refused); start it or fix "
                                          "--master"),
    (["--master", "spark://host:99999"], f"--master spark://host:99999: {FORMS}, found a bad port (Port out of "
                                         "range 0-65535); fix --master"),
    (["--master", "spark://:7077"], f"--master spark://:7077: {FORMS} (host and port), found 'spark://:7077'; fix "
                                    "--master"),
    (["--master", "yarn"], "--master yarn: expected HADOOP_CONF_DIR or YARN_CONF_DIR to name the cluster's "
                           "configuration folder, found neither set; export one, or run under spark-submit"),
    (["--batch_size", "0"], "spark_predict: argument --batch_size: expected a whole number of at least 1, found '0'"),
    (["--rows_per_call", "1e9"], "spark_predict: argument --rows_per_call: expected a whole number of at least 1, "
                                 "found '1e9'"),
    (["--partitions", "-2"], "spark_predict: argument --partitions: expected a whole number of at least 0, found "
                             "'-2'"),
    (["--delimiter", ";;"], "spark_predict: argument --delimiter: expected one character other than a quote or "
                            "line break, found ';;'"),
])
def test_command_line_refused_before_spark_starts(tmp_path, capsys, monkeypatch, flags, message):
    from pyspark.sql import SparkSession

    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    started = SparkSession.getActiveSession()
    t0 = time.perf_counter()
    code = main(["--model", str(tmp_path), "--input", str(tmp_path / "in.csv"), "--output",
                 str(tmp_path / "out.parquet"), *flags])
    assert time.perf_counter() - t0 < CONNECT_SECONDS  # a refused port answers at once; nothing is retried
    assert (code, one_line(capsys.readouterr().err)) == (2, f"error: {message}")
    assert SparkSession.getActiveSession() is started  # no Spark was started for it
    assert list(tmp_path.iterdir()) == []


def test_unreachable_master_is_bounded(monkeypatch):
    """A host that never answers (a dropped SYN, a name lookup that hangs) costs CONNECT_SECONDS, not Spark's
    minutes of retries."""
    import socket

    from jobtitles.predict import spark_predict

    monkeypatch.setattr(spark_predict, "CONNECT_SECONDS", 1)
    # a connection that never answers; what it returns after the test is closed by the still-running thread
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: time.sleep(30) or __import__("io").BytesIO())
    t0 = time.perf_counter()
    with pytest.raises(Exception, match=r"^--master spark://10\.255\.255\.1:7077: expected a master that accepts "
                                        r"connections, found 10\.255\.255\.1:7077 \(no answer within 1 s\); start it "
                                        r"or fix --master$"):
        spark_predict.check_master("spark://10.255.255.1:7077")
    assert time.perf_counter() - t0 < 3


# --- in the shared session ---------------------------------------------------------------------------------------
@pytest.fixture
def parquet_input(spark, tmp_path) -> str:
    src = str(tmp_path / "in.parquet")
    spark.createDataFrame([("VP Sales",)], "Title string").write.parquet(src)
    return src


def _no_job_ran(spark, argv, capsys) -> tuple[int, str, int]:
    """(exit code, stderr, Spark jobs started) of the command."""
    sc = spark.sparkContext
    group = f"hostile-{time.monotonic_ns()}"  # one group per call: a group's job count is cumulative
    sc.setJobGroup(group, "the command up to its error")
    try:
        code, err = run_cli(argv, capsys)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return code, err, len(sc.statusTracker().getJobIdsForGroup(group))


def test_model_folder_refused_on_the_driver(spark, model_dir, tiny_model_dir, parquet_input, tmp_path, capsys):
    """A plain checkpoint and a model folder with a bad decision key: refused on the driver, where the model is
    loaded once as every worker would load it (before, the second failed in each task's Python worker)."""
    out = str(tmp_path / "out.parquet")
    code, err, jobs = _no_job_ran(spark, ["--model", str(tiny_model_dir), "--input", parquet_input, "--output", out],
                                  capsys)
    assert (code, jobs) == (2, 0)
    assert one_line(err).startswith(f"error: {tiny_model_dir}: not a trained multi-label classifier")
    bad = tmp_path / "bad_model"
    shutil.copytree(model_dir, bad)
    cfg = json.loads((bad / "config.json").read_text(encoding="utf-8"))
    cfg["decision_at_least_one"] = "false"  # a truthy string
    (bad / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    code, err, jobs = _no_job_ran(spark, ["--model", str(bad), "--input", parquet_input, "--output", out], capsys)
    assert (code, jobs) == (2, 0)
    assert one_line(err).startswith(f"error: {bad / 'config.json'}: decision_at_least_one must be true or false, "
                                    "found 'false'")
    assert not Path(out).exists()


def test_inputs_and_outputs_spark_cannot_use(spark, model_dir, parquet_input, tmp_path, capsys):
    """Each case: one line naming the path, what was expected and what Spark found; no job, nothing written."""
    model_copy = tmp_path / "model"
    shutil.copytree(model_dir, model_copy)
    (tmp_path / "bad.parquet").write_text("not parquet at all", encoding="utf-8")
    (tmp_path / "empty.parquet").mkdir()
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    nested = tmp_path / "all.parquet"
    shutil.copytree(parquet_input, nested / "part.parquet")
    out = str(tmp_path / "out.parquet")
    cases = {  # (--input, --output, extra flags): the error line as a regular expression
        "not_parquet": ((str(tmp_path / "bad.parquet"), out, []),
                        rf"--input {tmp_path}/bad\.parquet: expected Parquet data Spark can read, found "
                        r"org\.apache\.spark\.SparkException: \[FAILED_READ_FILE\.CANNOT_READ_FILE_FOOTER\] .*; "
                        r"check that it is a Parquet file or a folder of them"),
        "empty_folder": ((str(tmp_path / "empty.parquet"), out, []),
                         rf"--input {tmp_path}/empty\.parquet: expected Parquet data Spark can read, found "
                         r"\[UNABLE_TO_INFER_SCHEMA\] .*; check that it is a Parquet file or a folder of them"),
        "unknown_scheme": (("xyz://host/in.parquet", out, []),
                           r"xyz://host/in\.parquet: expected a path one of Spark's file systems can open, found "
                           r"org\.apache\.hadoop\.fs\.UnsupportedFileSystemException: No FileSystem for scheme "
                           r"\"xyz\"; check the path \(a scheme such as s3a:// needs its Hadoop jars on the "
                           r"classpath\)"),
        "output_under_a_file": ((parquet_input, str(tmp_path / "a_file" / "out.parquet"), []),
                                rf"--output {tmp_path}/a_file/out\.parquet: expected file:{tmp_path}/a_file to be a "
                                r"folder, found a file; choose another path"),
        "output_holds_input": ((str(nested / "part.parquet"), str(nested), ["--overwrite"]),
                               rf"--output {nested}: expected a path outside the input \({nested}/part\.parquet\), "
                               r"found one holding it; write the labels elsewhere"),
        "output_in_model": ((parquet_input, str(model_copy / "x.parquet"), ["--model", str(model_copy)]),
                            rf"--output {model_copy}/x\.parquet: expected a path outside the model folder "
                            rf"\({model_copy}\), found one inside it; write the labels elsewhere"),
    }
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    wrong = {}  # every case is run, and every one that goes wrong is reported
    for case, ((src, dst, extra), pattern) in cases.items():
        argv = ["--model", str(model_dir), "--input", src, "--output", dst, *extra]
        code, err, jobs = _no_job_ran(spark, argv, capsys)
        lines = err.strip().splitlines() or [""]
        # at most one job: Spark's own read of a schema or footer
        if code != 2 or jobs > 1 or "Traceback" in err or not re.fullmatch("error: " + pattern, lines[-1]):
            wrong[case] = (code, jobs, lines[-1][:300])
    assert wrong == {}
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written or removed


def test_a_spark_failure_is_one_line(spark, monkeypatch, tmp_path, capsys):
    """What no check foresees (a worker's Python error, an analysis error) ends in Spark's own line."""
    from pyspark.errors import PySparkException

    from jobtitles.predict import spark_predict

    def fails(_):
        import not_a_module_here  # noqa: F401 - the error a worker without the package raises

        yield 1

    with pytest.raises(PySparkException) as info:
        spark.sparkContext.parallelize([0], 1).mapPartitions(fails).collect()
    assert spark_error_line(info.value) == "ModuleNotFoundError: No module named 'not_a_module_here'"

    def run(args, session):
        raise info.value

    monkeypatch.setattr(spark_predict, "run", run)
    code, err = run_cli(["--model", "m", "--input", "i.parquet", "--output", str(tmp_path / "o.parquet")], capsys)
    assert (code, one_line(err)) == (2, "error: the Spark job failed: ModuleNotFoundError: No module named "
                                        f"'not_a_module_here'; nothing was written to {tmp_path / 'o.parquet'} "
                                        "(Spark's log above has the details)")


# --- in a process of its own -------------------------------------------------------------------------------------
def _env_without_venv(tmp_path: Path) -> dict[str, str]:
    """The environment of someone who runs .venv/bin/python without activating the venv: PATH holds no venv,
    and its first `python3` is another Python (here one that cannot run anything, so the test means the same on
    every machine), no PYSPARK_PYTHON."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\necho 'not the driver python' >&2\nexit 1\n", encoding="utf-8")
    (fake / "python3").chmod(0o755)
    venv = Path(sys.prefix)
    path = [str(fake)] + [p for p in os.environ.get("PATH", "").split(os.pathsep)
                          if p and not Path(p).resolve().is_relative_to(venv.resolve())]
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV")}
    env.update(PATH=os.pathsep.join(path), HF_HUB_OFFLINE="1", SPARK_LOCAL_IP="127.0.0.1")
    return env


def test_venv_python_without_activation_labels(model_dir, tmp_path):
    """Local mode: the workers run the driver's Python (sys.executable), not the `python3` on PATH."""
    src = tmp_path / "in.csv"
    src.write_text("Title;Column 1\nVP Sales;\nCEO;\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "jobtitles.predict.spark_predict", "--model", str(model_dir), "--input",
                           str(src), "--output", str(out), "--master", "local[1]"],
                          capture_output=True, text=True, env=_env_without_venv(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "labeled 2 rows (0 null/empty titles -> null labels)" in proc.stderr
    assert "Traceback" not in proc.stderr and out.is_dir()


def test_no_java_is_one_line(tmp_path):
    env = dict(_env_without_venv(tmp_path), JAVA_HOME=str(tmp_path / "no-java"))
    proc = subprocess.run([sys.executable, "-m", "jobtitles.predict.spark_predict", "--model", str(tmp_path), "--input",
                           "in.parquet", "--output", str(tmp_path / "out.parquet")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == ("error: Spark: expected Spark to start, found [JAVA_GATEWAY_EXITED] Java "
                                     "gateway process exited before sending its port number.; check --master and "
                                     "that Java 17+ is installed (java -version, JAVA_HOME)")
