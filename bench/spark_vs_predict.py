"""predict.py vs the Spark command on the same generated titles, same backend, same cores: throughput and memory.

    flock -x /tmp/jobtitles-cpu.lock python bench/spark_vs_predict.py --model outputs/spark_bench_model \
        --n 1000000 --backend onnx-int8 --master "local[2]"

Titles come from bench/large_file.py's generator (unique, numeric suffix). Its label columns are dropped
(--with_labels keeps them) so that both commands do the same work: with label columns predict.py also compares
every prediction with the file's labels and keeps them all in memory for that report.

Each command runs as a subprocess; a psutil sampler walks its process tree every --interval seconds and keeps
each process's peak RSS (for Spark: the driver's Python, the JVM that holds the driver and, in local mode, the
executor, the pyspark daemon and each forked Python worker) and the peak of their sum at one instant. RSS counts
pages shared by forked workers once per process, so the sum overstates real use a little.
Both outputs are then joined on the title and their label sets compared.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from large_file import write_csv  # noqa: E402  (the generator of the large-file benchmark)


@dataclass
class Run:
    name: str
    wall_s: float = 0.0
    returncode: int = 0
    peak_rss: dict[str, float] = field(default_factory=dict)  # role (pid) -> MiB
    peak_total: float = 0.0
    stderr_tail: str = ""


def role(proc: psutil.Process, root_pid: int) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return f"? ({proc.pid})"
    if proc.pid == root_pid:
        return "driver (python)"
    if "java" in proc.name() or "java" in cmd.split(" ")[0]:
        return "JVM (driver + local executor)"
    if "pyspark.daemon" in cmd:
        try:
            parent = proc.parent()
            if parent is not None and "pyspark.daemon" in " ".join(parent.cmdline()):
                return f"python worker {proc.pid}"
        except psutil.Error:
            pass
        return "pyspark daemon"
    return f"{proc.name()} {proc.pid}"


def run_sampled(name: str, cmd: list[str], interval: float, env: dict) -> Run:
    result = Run(name)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0.0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            try:
                mib = p.memory_info().rss / 2**20
            except psutil.Error:
                continue
            key = role(p, proc.pid)
            result.peak_rss[key] = max(result.peak_rss.get(key, 0.0), mib)
            total += mib
        result.peak_total = max(result.peak_total, total)
        time.sleep(interval)
    result.wall_s = time.perf_counter() - t0
    reader.join()
    result.returncode = proc.returncode
    result.stderr_tail = "".join(out[-5:])
    return result


def titles_only(src: Path, dst: Path) -> None:
    with src.open(encoding="utf-8", newline="") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        w = csv.writer(fout, delimiter=";", lineterminator="\n")
        for row in csv.reader(fin, delimiter=";"):
            w.writerow(row[:1])


def compare(predict_csv: Path, spark_csv: Path) -> tuple[int, int]:
    """(rows compared, rows whose label sets differ), joined on the (unique) title."""
    import pandas as pd

    a = pd.read_csv(predict_csv, sep=";", usecols=["title", "predicted"], keep_default_na=False)
    parts = sorted(spark_csv.glob("part-*.csv"))
    b = pd.concat([pd.read_csv(p, sep=";", usecols=["Title", "predicted"], keep_default_na=False) for p in parts])
    m = a.merge(b, left_on="title", right_on="Title", suffixes=("_py", "_spark"))
    norm = lambda s: s.map(lambda v: frozenset(x for x in v.split(" | ") if x))  # noqa: E731
    return len(m), int((norm(m["predicted_py"]) != norm(m["predicted_spark"])).sum())


def table(runs: list[Run], n: int) -> str:
    base = runs[0]
    lines = ["| command | wall | titles/s | vs predict.py | peak RSS per process (MiB) | peak RSS, whole tree |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        procs = "; ".join(f"{k}: {v:,.0f}" for k, v in sorted(r.peak_rss.items()))
        lines.append(f"| {r.name} | {r.wall_s:,.1f} s | {n / r.wall_s:,.0f} | {base.wall_s / r.wall_s:.2f}x | "
                     f"{procs} | {r.peak_total:,.0f} MiB |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="outputs/spark_bench_model")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--backend", default="onnx-int8")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--interval", type=float, default=0.25, help="memory sampling period, seconds")
    p.add_argument("--with_labels", action="store_true")
    p.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    args = p.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYSPARK_PYTHON": sys.executable}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src = work / "titles.csv"
        t0 = time.perf_counter()
        write_csv(work / "generated.csv", args.n)
        if args.with_labels:
            os.replace(work / "generated.csv", src)
        else:
            titles_only(work / "generated.csv", src)
            (work / "generated.csv").unlink()
        print(f"generated {args.n:,} titles ({src.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
              flush=True)
        py_out, spark_out = work / "predict_out.csv", work / "spark_out.csv"
        runs = [
            run_sampled("predict.py", [sys.executable, "predict.py", "--model", args.model, "--backend", args.backend,
                                       "--input", str(src), "--output", str(py_out)], args.interval, env),
            run_sampled(f"spark_predict {args.master}",
                        [sys.executable, "-m", "jobtitles.predict.spark_predict", "--model", args.model, "--backend",
                         args.backend, "--input", str(src), "--output", str(spark_out), "--master", args.master,
                         "--overwrite"], args.interval, env),
        ]
        for r in runs:
            print(f"--- {r.name}: exit {r.returncode}, {r.wall_s:.1f} s\n{r.stderr_tail}", flush=True)
        if any(r.returncode for r in runs):
            sys.exit(1)
        compared, differ = compare(py_out, spark_out)
    print(f"\n{args.n:,} titles, backend {args.backend}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(table(runs, args.n))
    print(f"label sets compared on {compared:,} titles: {differ:,} differ")
    ratio = runs[0].wall_s / runs[1].wall_s
    print(f"Spark throughput = {ratio:.1%} of predict.py's (target >= 80%): {'met' if ratio >= 0.8 else 'NOT met'}")


if __name__ == "__main__":
    main()
