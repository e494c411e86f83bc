"""Label a CSV, Parquet data set or table on Spark, without writing Spark code.

    python -m jobtitles.spark_predict --model outputs/base/model --input titles.csv --output labeled.parquet \
        --master "local[*]" --backend onnx-int8

Everything that can be wrong with the command (model folder, backend files, title column, output path) is
checked on the driver before any task runs. Parquet output keeps every input column and adds `prediction`
(struct<labels: array<string>, scores: map<string,float>>); CSV output adds `predicted` (labels joined by " | ")
and one `score:<label>` column per label, as predict.py does. The output is written to a temporary sibling path
and renamed into place at the end, so a failed job leaves no half output.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from jobtitles.core.errors import UserError, cli_entry
from jobtitles.core.labels import LABEL_SEP
from jobtitles.predict.backends import AUTO, resolve_backend
from jobtitles.predict.spark import BACKENDS, ROWS_PER_CALL, spark_error_line, title_labeler

TABLE_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}$")
# the master URLs Spark 4 knows (SparkContext.createTaskScheduler), checked before Spark starts: Spark would
# answer another with a JVM traceback, and an unreachable spark:// master with minutes of retries
LOCAL_MASTER = re.compile(r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]")
MASTER_FORMS = ("local[*], local[N], local[N,F], local-cluster[N,C,M], spark://host:port, yarn or "
                "k8s://https://host:port")
CONNECT_SECONDS = 5  # the bound on reaching a spark:// or k8s:// master before Spark starts


class ArgParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"spark_predict: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="python -m jobtitles.spark_predict", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Model folder written by train.py (outputs/<run>/model).")
    p.add_argument("--input", required=True,
                   help="A .csv file or folder (semicolon, header), a .parquet file or folder, or a table name.")
    p.add_argument("--output", required=True, help="A .parquet or .csv path (Spark writes a folder).")
    p.add_argument("--master", default=None, help="Spark master, e.g. local[*]; default: spark-submit's or local[*].")
    p.add_argument("--title_column", default="Title")
    p.add_argument("--backend", default="auto", choices=("auto", *BACKENDS),
                   help="auto (default): the folder's int8 export when it passed its parity check, else torch.")
    p.add_argument("--batch_size", type=_whole(1), default=64, help="Titles per forward pass (as predict.py).")
    p.add_argument("--rows_per_call", type=_whole(1), default=ROWS_PER_CALL,
                   help="Titles length-sorted together per model call, at most one Arrow batch.")
    p.add_argument("--partitions", type=_whole(0), default=0, help="Repartition the input to N partitions (0: keep).")
    p.add_argument("--ship_model", action="store_true",
                   help="Copy the model folder to every executor (SparkContext.addFile) instead of reading it "
                        "from a shared path.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output.")
    p.add_argument("--delimiter", default=";", type=_delimiter)
    return p


def _whole(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*\d{1,9}\s*", text) or int(text) < least:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {least}, found {text!r:.40}")
        return int(text)

    return parse


def _delimiter(text: str) -> str:
    if len(text) != 1 or text in "\"\r\n":  # the rule of the training config's `delimiter`
        raise argparse.ArgumentTypeError(f"expected one character other than a quote or line break, found {text!r:.40}")
    return text


def check_master(master: str | None) -> None:
    """A master URL of a form Spark knows, and for spark:// and k8s:// one that answers within CONNECT_SECONDS;
    checked before Spark starts. What remains: a port that answers but is no Spark master (Spark gives up after
    about a minute), and yarn's ResourceManager, which Hadoop's client retries for minutes."""
    if master is None or LOCAL_MASTER.fullmatch(master):
        return
    if master == "yarn":
        if not (os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")):
            raise UserError("--master yarn: expected HADOOP_CONF_DIR or YARN_CONF_DIR to name the cluster's "
                            "configuration folder, found neither set; export one, or run under spark-submit")
        return
    scheme, _, rest = master.partition("://")
    if scheme not in ("spark", "k8s") or not rest:
        raise UserError(f"--master {master}: expected {MASTER_FORMS}, found {master!r:.80}; fix --master (or leave "
                        "it out for local[*])")
    try:  # spark://h1:p1,h2:p2 (standby masters); k8s://https://host:port, "https://" implied when left out
        urls = [urlsplit("spark://" + part) for part in rest.split(",")] if scheme == "spark" else \
            [urlsplit(rest if "://" in rest else "https://" + rest)]
        addresses = [(u.hostname, u.port or (None if scheme == "spark" else 443)) for u in urls]
    except ValueError as err:
        raise UserError(f"--master {master}: expected {MASTER_FORMS}, found a bad port ({err}); fix --master") from None
    if not all(host and port for host, port in addresses):
        raise UserError(f"--master {master}: expected {MASTER_FORMS} (host and port), found {master!r:.80}; "
                        "fix --master")
    failures = [f"{host}:{port} {why}" for host, port in addresses if (why := _unreachable(host, port))]
    if len(failures) == len(addresses):
        raise UserError(f"--master {master}: expected a master that accepts connections, found {', '.join(failures)}; "
                        "start it or fix --master")


def _unreachable(host: str, port: int) -> str | None:
    """Why nothing accepted a TCP connection at host:port within CONNECT_SECONDS (name lookup included, which
    has no timeout of its own: hence the thread), or None when something did."""
    why = [f"(no answer within {CONNECT_SECONDS} s)"]

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
            why[0] = None
        except OSError as err:
            why[0] = f"({err.strerror or err})"

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS + 1)
    return why[0]


@dataclass
class Summary:
    rows: int
    blank_titles: int
    labels_per_row: float
    seconds: float

    def line(self, output: str) -> str:
        return (f"labeled {self.rows:,} rows ({self.blank_titles:,} null/empty titles -> null labels), "
                f"{self.labels_per_row:.3f} labels per row, {self.seconds:.1f} s -> {output}")


# --- paths, through Hadoop's FileSystem so that local, hdfs://, s3a:// and dbfs:/ behave the same -------------
def _hadoop_path(spark, path: str):
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    jvm = spark.sparkContext._jvm
    try:
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        return fs, fs.makeQualified(hpath)
    except (Py4JError, PySparkException) as err:  # "No FileSystem for scheme", a class not found, a bad URI
        raise UserError(f"{path}: expected a path one of Spark's file systems can open, found "
                        f"{spark_error_line(err)}; check the path (a scheme such as s3a:// needs its Hadoop "
                        "jars on the classpath)") from None


def _exists(spark, path: str) -> bool:
    fs, hpath = _hadoop_path(spark, path)
    return bool(fs.exists(hpath))


def output_format(path: str) -> str:
    ext = path.rstrip("/").rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if ext not in ("parquet", "csv"):
        raise UserError(f"--output {path}: expected a name ending in .parquet or .csv, found {'.' + ext if ext else 'none'}")
    return ext


def check_output(spark, input_path: str, output: str, overwrite: bool, model: str | None = None) -> None:
    fs, out_q = _hadoop_path(spark, output)
    for other, what in ((input_path, "the input"), (model, "the model folder")):
        if other is None or not _exists(spark, other):
            continue
        a, b = out_q.toString().rstrip("/"), _hadoop_path(spark, other)[1].toString().rstrip("/")
        if a == b:
            raise UserError(f"--output {output} is {what}; write the labels to another path")
        if b.startswith(a + "/") or a.startswith(b + "/"):  # --overwrite would delete it, or Spark write into it
            raise UserError(f"--output {output}: expected a path outside {what} ({other}), found one "
                            f"{'holding' if b.startswith(a + '/') else 'inside'} it; write the labels elsewhere")
    if _exists(spark, output) and not overwrite:
        raise UserError(f"--output {output} exists; choose another path or pass --overwrite to replace it")
    parent = out_q.getParent()
    while parent is not None and not fs.exists(parent):
        parent = parent.getParent()
    if parent is not None and not fs.getFileStatus(parent).isDirectory():
        raise UserError(f"--output {output}: expected {parent.toString()} to be a folder, found a file; choose "
                        "another path")


def read_input(spark, source: str, delimiter: str):
    """DataFrame of a .csv / .parquet path (file or folder) or a table; every CSV column read as a string."""
    if not _exists(spark, source):
        if TABLE_NAME.match(source) and spark.catalog.tableExists(source):
            return spark.table(source)
        raise UserError(f"--input {source}: no such file, folder or table; check the path")
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    name = source.rstrip("/").lower()
    kind = "Parquet" if name.endswith(".parquet") or (not name.endswith(".csv") and _holds(spark, source, ".parquet")) \
        else "CSV" if name.endswith(".csv") or _holds(spark, source, ".csv") else None
    if kind is None:
        raise UserError(f"--input {source}: expected a .csv or .parquet file or folder, or a table name")
    try:
        if kind == "Parquet":
            return spark.read.parquet(source)
        # escape='"' reads doubled quotes as Python's csv module writes them; multiLine stays off so that a
        # large file splits into many tasks (titles hold no line breaks)
        df = spark.read.csv(source, sep=delimiter, header=True, encoding="UTF-8", escape='"')
    except (Py4JError, PySparkException) as err:  # not Parquet, an empty folder, unreadable: Spark's first line
        raise UserError(f"--input {source}: expected {kind} data Spark can read, found {spark_error_line(err)}; "
                        f"check that it is a {kind} file or a folder of them") from None
    # header cells may carry spaces (data.py strips them too); Spark's UTF-8 reader already drops a BOM
    return df.toDF(*[c.replace("\ufeff", "").strip() for c in df.columns])


def _holds(spark, folder: str, ext: str) -> bool:
    fs, hpath = _hadoop_path(spark, folder)
    if not fs.getFileStatus(hpath).isDirectory():
        return False
    return any(st.getPath().getName().lower().endswith(ext) for st in fs.listStatus(hpath))


def check_title_column(df, column: str, source: str) -> None:
    if column not in df.columns:
        raise UserError(f"--input {source}: no column {column!r}; found columns {df.columns}; "
                        f"pass --title_column <one of them>")
    dtype = dict(df.dtypes)[column]
    if dtype != "string":
        raise UserError(f"--input {source}: column {column!r} holds {dtype}, expected strings (job titles)")


def spreadsheet_safe(col):
    """jobtitles.core.spreadsheet.escape_cell as a column expression (its pattern is also a Java regex)."""
    from pyspark.sql import functions as F

    from jobtitles.core.spreadsheet import FORMULA_START, QUOTE

    return F.when(col.rlike(FORMULA_START), F.concat(F.lit(QUOTE), col)).otherwise(col)


def flatten_for_csv(df, labels: list[str]):
    """The CSV's columns: every string cell spreadsheet-safe (titles, the user's other text columns, `predicted`),
    as predict.py writes them; numbers stay as they are, and the Parquet output is not built from this."""
    from pyspark.sql import functions as F

    types = dict(df.dtypes)

    def cell(name: str):
        col = F.col(f"`{name}`")
        return spreadsheet_safe(col).alias(name) if types[name] == "string" else col

    return df.select(*[cell(c) for c in df.columns if c != "prediction"],
                     spreadsheet_safe(F.array_join(F.col("prediction.labels"), LABEL_SEP)).alias("predicted"),
                     *[F.round(F.col("prediction.scores")[lab], 4).alias(f"score:{lab}") for lab in labels])


def get_spark(master: str | None):
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # embedded use (tests, notebooks): reuse it and leave it running
        return active, False
    builder = SparkSession.builder.appName("jobtitles.predict.spark_predict")
    if master:
        builder = builder.master(master)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit, which sets the master itself
        builder = builder.master("local[*]")
    builder = builder.config("spark.ui.showConsoleProgress", "true")
    if os.environ.get("HF_HUB_OFFLINE"):
        builder = builder.config("spark.executorEnv.HF_HUB_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    try:
        return builder.getOrCreate(), True
    except Exception as err:  # noqa: BLE001 - no Java, a gateway that exits, a master Spark refuses: many types
        where = f"--master {master}" if master else "Spark"
        raise UserError(f"{where}: expected Spark to start, found {spark_error_line(err)}; check --master and that "
                        "Java 17+ is installed (java -version, JAVA_HOME)") from None


def run(args: argparse.Namespace, spark) -> Summary:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    fmt = output_format(args.output)
    backend, why = resolve_backend(Path(args.model), args.backend)
    labeler = title_labeler(args.model, backend, args.batch_size, args.rows_per_call, ship=args.ship_model,
                            spark=spark)
    check_output(spark, args.input, args.output, args.overwrite, args.model)
    df = read_input(spark, args.input, args.delimiter)  # Spark reads the schema only (CSV header, Parquet footer)
    check_title_column(df, args.title_column, args.input)
    if args.backend == AUTO:  # after every check: a bad command is still a single error line
        print(f"backend {backend}: {why}", file=sys.stderr)
    if args.partitions > 0:
        df = df.repartition(args.partitions)
    elif df.rdd.getNumPartitions() < spark.sparkContext.defaultParallelism:
        # a CSV smaller than a few blocks comes in as one partition: spread it so that every core labels
        df = df.repartition(spark.sparkContext.defaultParallelism)
    # An input column with one of our names would be silently replaced: refuse it instead.
    for new in ["prediction"] + (["predicted"] + [f"score:{lab}" for lab in labeler.labels] if fmt == "csv" else []):
        if new in df.columns:
            raise UserError(f"--input {args.input}: already has a column {new!r}; rename or drop it first")
    out = df.withColumn("prediction", labeler(F.col(f"`{args.title_column.replace('`', '``')}`")))
    # Observation: the summary is gathered while the output is written, without a second pass over the model.
    obs = Observation("jobtitles")
    out = out.observe(obs, F.count(F.lit(1)).alias("rows"),
                      F.sum(F.col("prediction").isNull().cast("long")).alias("blank"),
                      F.sum(F.size(F.col("prediction.labels"))).alias("labels"))
    if fmt == "csv":
        out = flatten_for_csv(out, labeler.labels)
    tmp = _tmp_sibling(args.output)
    t0 = time.perf_counter()
    try:
        writer = out.write.mode("error")
        if fmt == "csv":
            # no trimming: Spark's default drops leading characters up to U+0020, which turned " =1+1" and
            # "\x01=1" into live formulas; the cells are written as flatten_for_csv made them
            writer.csv(tmp, sep=args.delimiter, header=True, encoding="UTF-8", escape='"',
                       ignoreLeadingWhiteSpace=False, ignoreTrailingWhiteSpace=False)
        else:
            writer.parquet(tmp)
    except BaseException:
        fs, hpath = _hadoop_path(spark, tmp)
        fs.delete(hpath, True)  # a failed job leaves no half output
        raise
    _move_into_place(spark, tmp, args.output)
    seconds = time.perf_counter() - t0
    m = obs.get
    rows, blank = int(m["rows"]), int(m["blank"] or 0)
    return Summary(rows, blank, (m["labels"] or 0) / max(rows - blank, 1), seconds)


def _tmp_sibling(output: str) -> str:
    head, _, name = output.rstrip("/").rpartition("/")
    return f"{head + '/' if head else ''}.{name}.tmp-{uuid.uuid4().hex[:8]}"


def _move_into_place(spark, tmp: str, output: str) -> None:
    fs, dst = _hadoop_path(spark, output)
    _, src = _hadoop_path(spark, tmp)
    if fs.exists(dst):  # --overwrite was checked before the job; the old output goes only once the new is complete
        fs.delete(dst, True)
    if not fs.rename(src, dst):
        raise UserError(f"could not rename {tmp} to {output}; the labeled data is kept in {tmp}")


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from jobtitles.core.log import quiet_libraries

    quiet_libraries()
    check_master(args.master)
    spark, owned = get_spark(args.master)
    try:
        summary = run(args, spark)
    except Exception as err:  # a Spark failure the checks above cannot foresee: its one line, not a JVM traceback
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        if not isinstance(err, (Py4JError, PySparkException)):
            raise
        raise UserError(f"the Spark job failed: {spark_error_line(err)}; nothing was written to {args.output} "
                        "(Spark's log above has the details)") from None
    finally:
        if owned:
            spark.stop()
    print(summary.line(args.output), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
