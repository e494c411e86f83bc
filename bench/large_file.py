"""Load + tokenize a large CSV: time and peak memory for 1,000,000 titles (generated here, never in git).

    python bench/large_file.py [--rows 1000000] [--keep]

Titles are composed from the sample generator's parts with a numeric suffix so that they are unique (the loader
drops exact duplicates). Prints wall time of each step and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data"))


def write_csv(path: Path, n: int, seed: int = 0) -> None:
    from make_sample import SINGLE, case, region

    rng = random.Random(seed)
    makers = [(label, maker) for label, (maker, _) in SINGLE.items()]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(["Title", "Column 1", "Column 2"])
        for i in range(n):
            label, maker = makers[rng.randrange(len(makers))]
            w.writerow([f"{case(rng, region(rng, maker(rng)))} #{i}", label, ""])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--max_length", type=int, default=64)
    args = p.parse_args()
    from jobtitles.core.data import load_labeled_csv
    from jobtitles.core.tokenization import build_dataset, tokenize_dataset
    from jobtitles.train.training import load_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.csv"
        t0 = time.perf_counter()
        write_csv(path, args.rows)
        print(f"generated {args.rows:,} rows ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
        base_rss = peak_rss_mb()
        t0 = time.perf_counter()
        data = load_labeled_csv(path, n_splits=5)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = build_dataset(data.titles, data.y, data.rows)
        t_build = time.perf_counter() - t0
        tok = load_tokenizer("embedded")
        t0 = time.perf_counter()
        ds = tokenize_dataset(ds, tok, args.max_length)
        t_tok = time.perf_counter() - t0
    print(f"load + validate CSV: {t_load:.1f} s ({len(data):,} titles kept, {len(data.dropped)} dropped)")
    print(f"build Dataset:       {t_build:.1f} s")
    print(f"tokenize (batched map, fast tokenizer): {t_tok:.1f} s = {len(ds) / t_tok:,.0f} titles/s")
    print(f"peak RSS: {peak_rss_mb():.0f} MiB (before loading: {base_rss:.0f} MiB)")


if __name__ == "__main__":
    main()
