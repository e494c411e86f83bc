"""Quality and wall time on subsamples of a labelled CSV: the training budget (min_train_steps) on and off, with
the TF-IDF baseline on the same folds, in one run.

    python bench/subsamples.py ../shared/data/job_titles_seniority_department.csv --sizes 500,1000,2000,all

Each size is a seeded sample of the file's rows (same rows for every setting). A setting runs only where it
changes something: with enough rows for min_train_steps at the configured epochs, "budget on" trains exactly as
"budget off", and the row says so instead of training twice.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from jobtitles.train.training import epochs_for_budget  # noqa: E402

SETTINGS = {"budget off (4 epochs)": ["--min_train_steps", "0"], "budget on (default)": []}


def subsample(csv: Path, size: str, seed: int, out_dir: Path) -> tuple[Path, int]:
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    header, rows = lines[0], [l for l in lines[1:] if l.strip()]
    if size != "all":
        idx = np.sort(np.random.default_rng(seed).choice(len(rows), int(size), replace=False))
        rows = [rows[i] for i in idx]
    path = out_dir / f"n{size}.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path, len(rows)


def run(csv: Path, out: Path, extra: list[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "base.yaml"), "--train_file",
           str(csv), "--output_dir", str(out), "--final_model", "false", "--label_issues", "false", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "w"))
    return json.loads((out / "cv_results.json").read_text()), time.perf_counter() - t0


def figures(res: dict) -> dict:
    shipped = res["decision_rule"]["variant"]
    pick = lambda v, m: res["summary"][v][m]  # noqa: E731
    return {"rule": res["decision_rule"]["chosen"], "n_rows": res["n_rows"],
            **{f"{name}_{m}": pick(v, m) for name, v in (("model", shipped), ("baseline", "baseline"))
               for m in ("micro_f1", "subset_accuracy", "macro_f1")}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path)
    p.add_argument("--sizes", default="500,1000,2000,all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out_dir", type=Path, default=ROOT / "outputs" / "subsamples")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes.split(","):
        csv, n = subsample(args.csv, size, args.seed, args.out_dir)
        n_train = math.ceil(n * 4 / 5)  # a fold's training split (5 folds)
        budget_changes = epochs_for_budget(4, n_train, 32, 200) != 4
        for name, extra in SETTINGS.items():
            if name.startswith("budget on") and not budget_changes:
                rows.append({"size": size, "setting": name, "same_as": "budget off (4 epochs)"})
                continue
            res, seconds = run(csv, args.out_dir / f"n{size}_{'on' if not extra else 'off'}", extra)
            rows.append({"size": size, "setting": name, "seconds": seconds, **figures(res)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| rows | setting | micro-F1 | subset acc. | macro-F1 | TF-IDF micro-F1 | TF-IDF subset acc. | wall |")
    print("|---|---|---|---|---|---|---|---|")
    f = lambda c: f"{c['mean']:.4f} ± {c['std']:.4f}"  # noqa: E731
    for r in rows:
        if "same_as" in r:
            print(f"| {r['size']} | {r['setting']} | same as {r['same_as']} (enough steps at 4 epochs) | | | | | |")
            continue
        print(f"| {r['n_rows']} | {r['setting']} | {f(r['model_micro_f1'])} | {f(r['model_subset_accuracy'])} | "
              f"{f(r['model_macro_f1'])} | {f(r['baseline_micro_f1'])} | {f(r['baseline_subset_accuracy'])} | "
              f"{r['seconds']:.0f} s |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
