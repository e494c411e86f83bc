"""predict.py on a file that repeats itself: each distinct model input scored once per chunk, against scoring every
row, in one process.

    python bench/dedupe.py --model outputs/base/model [--rows 1000000] [--distinct 20000] [--backend torch]

The file has `--distinct` distinct titles from the sample generator (data/make_sample.py), repeated by a Zipf-like
law (the k-th most frequent title about 1/k^1.1 as often as the first), shuffled, one per line. Scoring every row
is timed on the first `--baseline_rows` rows (its cost per row is constant) and scaled to the whole file; the
de-duplicated run does the whole file. Both runs are predict.py's own code (load the model, read, score, write a
CSV) after one warm-up run that pays the imports, and the baseline rows' outputs are compared byte for byte.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data"))


def distinct_titles(n: int, seed: int = 0) -> list[str]:
    from make_sample import SINGLE, case, region

    rng = random.Random(seed)
    makers = [maker for maker, _ in SINGLE.values()]
    out: dict[str, None] = {}
    while len(out) < n:
        out.setdefault(case(rng, region(rng, makers[rng.randrange(len(makers))](rng))), None)
    return list(out)


def zipf_rows(titles: list[str], rows: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(titles) + 1) ** 1.1
    counts = np.maximum(1, np.round(weights / weights.sum() * rows)).astype(int)  # every title at least once
    out = [t for t, c in zip(titles, counts) for _ in range(c)][:rows]
    rng.shuffle(out)
    return out


def predict(model: str, backend: str, src: Path, out: Path, grouping: bool, *extra: str) -> tuple[float, str]:
    from jobtitles.predict import inference
    from jobtitles.predict.predict_cli import main

    real = inference.distinct_rows
    if not grouping:  # every row its own group: scoring every row, the same code otherwise
        inference.distinct_rows = lambda keys: real(list(range(len(keys))))
    err = io.StringIO()
    try:
        start = time.perf_counter()
        with contextlib.redirect_stderr(err):
            assert main(["--model", model, "--backend", backend, "--input", str(src), "--output", str(out),
                         *extra]) == 0
        return time.perf_counter() - start, err.getvalue().strip().splitlines()[-1]
    finally:
        inference.distinct_rows = real


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--backend", default="torch")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--distinct", type=int, default=20_000)
    p.add_argument("--baseline_rows", type=int, default=50_000)
    p.add_argument("--chunk_size", type=int, default=10_000, help="predict.py's --chunk_size")
    args = p.parse_args()
    rows = zipf_rows(distinct_titles(args.distinct), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "all.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (tmp / "head.txt").write_text("\n".join(rows[:args.baseline_rows]) + "\n", encoding="utf-8")
        print(f"{len(rows)} rows, {len(set(rows))} distinct titles; backend {args.backend}")
        (tmp / "warm.txt").write_text("\n".join(rows[:10]) + "\n", encoding="utf-8")
        predict(args.model, args.backend, tmp / "warm.txt", tmp / "warm.csv", grouping=True)  # imports, once
        every, _ = predict(args.model, args.backend, tmp / "head.txt", tmp / "every.csv", grouping=False)
        grouped_head, _ = predict(args.model, args.backend, tmp / "head.txt", tmp / "grouped_head.csv", True)
        grouped, line = predict(args.model, args.backend, tmp / "all.txt", tmp / "grouped.csv", True,
                                "--chunk_size", str(args.chunk_size))
        same = (tmp / "every.csv").read_text() == (tmp / "grouped_head.csv").read_text()
        head = (tmp / "grouped.csv").read_text().splitlines()[:args.baseline_rows + 1]
        same_in_full = head == (tmp / "every.csv").read_text().splitlines()
    every_all = every * len(rows) / args.baseline_rows
    print(f"every row:  {args.baseline_rows} rows in {every:.1f} s ({args.baseline_rows / every:,.0f} rows/s); "
          f"{len(rows)} rows would take {every_all:.0f} s")
    print(f"de-duplicated: {len(rows)} rows in {grouped:.1f} s ({len(rows) / grouped:,.0f} rows/s): "
          f"{every_all / grouped:.1f}x; first {args.baseline_rows} rows alone {grouped_head:.1f} s "
          f"({every / grouped_head:.1f}x)")
    print(f"  predict.py: {line}")
    print(f"identical output on the first {args.baseline_rows} rows: {same} (alone), {same_in_full} (in the "
          "whole file)")


if __name__ == "__main__":
    main()
