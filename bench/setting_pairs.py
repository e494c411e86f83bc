"""Does a setting pay? The default run and the run with the setting on the same seeded subsamples and the same
folds, compared fold by fold on the shipped rule's figures (what the user gets from each run).

    python bench/setting_pairs.py ../shared/data/job_titles_seniority_department.csv --size 1000 --seeds 0,1,2 \\
        --setting "--title_normalization abbreviations"

A setting is worth adopting where the mean per-fold gain in subset accuracy is larger than its noise (the
standard deviation of the per-fold differences over sqrt(folds)) on most samples, as the run's own cross-fitted
choices demand of their candidates.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from jobtitles.selection.candidates import fold_key  # noqa: E402
from subsamples import run, subsample  # noqa: E402

METRICS = ("subset_accuracy", "micro_f1", "macro_f1")


def per_fold(res: dict) -> dict[str, np.ndarray]:
    key = fold_key(res["decision_rule"]["variant"])
    return {m: np.array([f[key][m] for f in res["folds"]]) for m in METRICS}


def compare(base: dict, other: dict) -> dict:
    a, b = per_fold(base), per_fold(other)
    out = {"rule_default": base["decision_rule"]["chosen"], "rule_setting": other["decision_rule"]["chosen"],
           "n_rows": base["n_rows"]}
    for m in METRICS:
        diff = b[m] - a[m]
        out[m] = {"default": float(a[m].mean()), "setting": float(b[m].mean()), "gain": float(diff.mean()),
                  "noise": float(diff.std(ddof=1) / np.sqrt(len(diff)))}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path)
    p.add_argument("--size", default="1000")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--setting", required=True, help="the flags of the compared run, as one string")
    p.add_argument("--out_dir", type=Path, default=ROOT / "outputs" / "setting_pairs")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        folder = args.out_dir / f"seed{seed}"
        folder.mkdir(exist_ok=True)
        csv, _ = subsample(args.csv, args.size, seed, folder)
        base, t0 = run(csv, folder / "default", [])
        other, t1 = run(csv, folder / "setting", shlex.split(args.setting))
        rows.append({"seed": seed, "seconds": [t0, t1], **compare(base, other)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\nsetting: {args.setting}\n")
    print("| sample | rule default / setting | subset acc. default -> setting (gain ± noise) | micro-F1 (gain ± noise) "
          "| macro-F1 (gain) |")
    print("|---|---|---|---|---|")
    for r in rows:
        s, mi, ma = r["subset_accuracy"], r["micro_f1"], r["macro_f1"]
        print(f"| {r['n_rows']} rows, seed {r['seed']} | {r['rule_default']} / {r['rule_setting']} | "
              f"{s['default']:.4f} -> {s['setting']:.4f} ({s['gain']:+.4f} ± {s['noise']:.4f}) | "
              f"{mi['default']:.4f} -> {mi['setting']:.4f} ({mi['gain']:+.4f} ± {mi['noise']:.4f}) | "
              f"{ma['default']:.4f} -> {ma['setting']:.4f} ({ma['gain']:+.4f}) |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
