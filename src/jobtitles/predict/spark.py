"""Label job titles on Apache Spark: a column function built on `pyspark.ml.functions.predict_batch_udf`.

    from jobtitles.predict.spark import title_labeler
    labeler = title_labeler("outputs/base/model", backend="onnx-int8")
    df.withColumn("prediction", labeler("Title"))      # struct<labels: array<string>, scores: map<string,float>>

Why predict_batch_udf and not mapInPandas: it is Spark's own batch-inference API and gives a *column* function
(usable in select/withColumn next to any other column, not a whole-DataFrame transform), it caches the
predictor once per Python worker across tasks (`make_predict_fn`), and it hands each Arrow batch over as a NumPy
array. Its one limit, that a struct result may only hold scalars and fixed-width arrays, is met by returning the
multi-hot decisions and the score matrix and building the label names and the score map in Spark SQL (JVM side,
cheap) from the label list known on the driver.

Why `scores` is a map<string,float> and not a struct with one field per label: label names hold spaces and
slashes ("Individual Contributor/Staff"), which Delta tables refuse as field names without column mapping; a map
reads the same in SQL (`prediction.scores['Vice President']`), has one schema for every model, and Parquet
stores it as two plain columns (keys, values).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from jobtitles.core.errors import UserError
from jobtitles.core.log import logger
from jobtitles.core.model_folder import ONNX_FILES
from jobtitles.core.titles import is_blank
from jobtitles.predict.backends import AUTO, resolve_backend

BACKENDS = ("torch", "onnx", "onnx-int8")
ROWS_PER_CALL = 10_000  # titles handed to TitleClassifier at once (= Arrow's default maxRecordsPerBatch); it
#                         length-sorts them and runs `batch_size` at a time


def check_model(model_dir: str | Path, backend: str, batch_size: int = 64) -> list[str]:
    """Driver-side checks before any task runs: the model is loaded here once, as every worker will load it
    (config, decision rule, scoring, tokenizer, baseline, weights, every key checked by TitleClassifier), so a
    bad folder is one line on the driver, not a Python traceback from each task. Returns the label names in
    model order."""
    from jobtitles.predict.inference import TitleClassifier

    model_dir = Path(model_dir)
    if backend not in BACKENDS:
        raise UserError(f"--backend: expected one of {', '.join(BACKENDS)}, found {backend!r}")
    if model_dir.is_dir() and backend in ONNX_FILES and not (model_dir / ONNX_FILES[backend]).is_file():
        flag = " --int8" if backend == "onnx-int8" else ""
        raise UserError(f"{model_dir / ONNX_FILES[backend]} not found (needed by --backend {backend}); export it "
                        f"first: python -m jobtitles.export --model {model_dir}{flag}")
    return list(TitleClassifier(model_dir, backend=backend, batch_size=batch_size).labels)


def use_driver_python(spark) -> None:
    """In local mode the Python workers run the driver's interpreter. PySpark starts them with $PYSPARK_PYTHON
    or else `python3` from PATH: with a virtual environment's python run without activating it, that is
    another Python without this package (ModuleNotFoundError in every task). A PYSPARK_PYTHON or
    spark.pyspark.python the user set is kept (and the latter applied: PySpark reads only the variable)."""
    sc = spark.sparkContext
    if "PYSPARK_PYTHON" in os.environ or not sc.master.startswith("local"):
        return  # a cluster's executors have their own Python: the driver's path may not exist there
    sc.pythonExec = sc.getConf().get("spark.pyspark.python") or sys.executable


def spark_error_line(err: BaseException, width: int = 300) -> str:
    """One line for a failure raised by Spark: a Python worker's own error line (`ModuleNotFoundError: ...`,
    a UserError's message), else the first line of the Java exception or of the message."""
    java = getattr(err, "java_exception", None)
    text = str(java.toString()) if java is not None else str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(err).__name__]
    line = lines[0]
    if type(err).__name__ == "PythonException":
        line = next((x for x in reversed(lines) if re.match(r"[\w.]+(Error|Exception|Interrupt)\b", x)), line)
        line = line.removeprefix("jobtitles.core.errors.UserError: ")
    return line if len(line) <= width else line[:width] + "..."


def clean_title(title: object) -> str:
    """The title as predict.py reads it: whitespace runs collapsed; '' for null, empty or blank."""
    return " ".join(title.split()) if isinstance(title, str) else ""


def resolve_model_dir(model_dir: str, shipped: bool) -> str:
    """On an executor: the folder shipped with SparkContext.addFile (SparkFiles) or the path itself (local mode,
    shared storage such as NFS, /dbfs or a path baked into the image)."""
    if shipped:
        from pyspark import SparkFiles

        return SparkFiles.get(Path(model_dir).name)
    return model_dir


def make_predict_fn_factory(model_dir: str, backend: str, batch_size: int, shipped: bool
                            ) -> Callable[[], Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """`make_predict_fn` for predict_batch_udf: runs once per Python worker (cached by Spark across tasks)."""

    def make_predict_fn() -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        # Loading from a local folder never needs the Hub: keep the worker offline even where the cluster's
        # environment does not say so.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from jobtitles.predict.inference import TitleClassifier

        # one Python worker per task slot: without a limit each would start a thread per machine core
        clf = TitleClassifier(resolve_model_dir(model_dir, shipped), backend=backend, batch_size=batch_size,
                              threads=_task_cpus())
        n_labels = len(clf.labels)

        def predict(titles: np.ndarray) -> dict[str, np.ndarray]:
            cleaned = [clean_title(t) for t in titles]
            valid = np.array([not is_blank(t) for t in cleaned], dtype=bool)
            scores = np.zeros((len(cleaned), n_labels), dtype=np.float32)
            hot = np.zeros((len(cleaned), n_labels), dtype=np.int8)
            if valid.any():
                kept = [t for t, ok in zip(cleaned, valid) if ok]
                s = clf.predict_scores(kept)  # length-sorted, batched, in input order
                scores[valid] = s
                hot[valid] = clf.decide(s)  # saved thresholds + every decision rule of the model
            return {"valid": valid.astype(np.int8), "hot": hot, "scores": scores}

        return predict

    return make_predict_fn


def _task_cpus() -> int:
    """Cores Spark gives one task (spark.task.cpus, default 1): the threads one Python worker may use."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return max(ctx.cpus() if ctx is not None else 1, 1)


@dataclass
class TitleLabeler:
    """A Spark column function: `labeler(col)` -> struct<labels: array<string>, scores: map<string,float>>,
    null where the title is null or blank (titles.is_blank: nothing visible in it)."""

    model_dir: str
    labels: list[str]
    backend: str = "torch"
    batch_size: int = 64
    rows_per_call: int = ROWS_PER_CALL
    shipped: bool = False
    _udf: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from pyspark.ml.functions import predict_batch_udf
        from pyspark.sql.types import ArrayType, ByteType, FloatType, StructField, StructType

        raw_type = StructType([
            StructField("valid", ByteType()),
            StructField("hot", ArrayType(ByteType())),
            StructField("scores", ArrayType(FloatType())),
        ])
        self._udf = predict_batch_udf(
            make_predict_fn_factory(self.model_dir, self.backend, self.batch_size, self.shipped),
            return_type=raw_type, batch_size=self.rows_per_call)

    def __call__(self, title):
        from pyspark.sql import functions as F

        raw = self._udf(F.col(title) if isinstance(title, str) else title)
        # No higher-order function (filter with a lambda) here: Spark refuses lambdas over a Python UDF's result.
        labels = F.array_compact(F.array(*[F.when(raw["hot"][j] == 1, F.lit(name))
                                           for j, name in enumerate(self.labels)]))
        scores = F.map_from_arrays(F.array(*[F.lit(name) for name in self.labels]), raw["scores"])
        return F.when(raw["valid"] == 1, F.struct(labels.alias("labels"), scores.alias("scores")))


def title_labeler(model_dir: str | Path, backend: str = "auto", batch_size: int = 64,
                  rows_per_call: int = ROWS_PER_CALL, ship: bool = False, spark=None) -> TitleLabeler:
    """Check the model folder on the driver and build the column function.

    ship=True copies the folder to every executor with SparkContext.addFile (for clusters without shared
    storage); otherwise each executor loads `model_dir` itself, so it must be readable there (always true in
    local mode). backend "auto": the folder's int8 export when it passed its parity check, else torch (chosen
    here, once, for every executor)."""
    from pyspark.sql import SparkSession

    model_dir = Path(model_dir)
    if backend == AUTO:
        backend, why = resolve_backend(model_dir, backend)
        logger.info(f"backend {backend}: {why}")
    labels = check_model(model_dir, backend, batch_size)
    spark = spark or SparkSession.getActiveSession()
    if ship:
        if spark is None:
            raise UserError("title_labeler(ship=True): no active SparkSession; create one first")
        spark.sparkContext.addFile(str(model_dir.resolve()), recursive=True)
    if spark is not None:
        use_driver_python(spark)
    return TitleLabeler(str(model_dir.resolve()) if not ship else model_dir.name, labels, backend, batch_size,
                        rows_per_call, shipped=ship)
