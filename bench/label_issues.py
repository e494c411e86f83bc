"""Planted label errors: does the label-issue ranking find them?

    python bench/label_issues.py ../shared/data/job_titles_seniority_department.csv \
        --json outputs/bench_label_issues/figures.json [--run_dir outputs/<run of the unmodified file>]

1. Reads the CSV (never copied into the project), swaps one label in `--rate` of the rows (fixed `--seed`) for
   another label of the same kind: Column 1 (seniority) for another seniority, or Column 2 (department) for
   another department, drawn in proportion to how often each occurs. Writes the planted CSV and the list of
   planted rows under `--out_dir`.
2. Runs the default 5-fold cross-validation on it as a subprocess:
   `python train.py --config configs/base.yaml --train_file <planted> --output_dir <out_dir>/run --final_model false
   --overwrite true` plus `--extra` (e.g. "--n_splits 3 --num_train_epochs 1" for a trial). An existing run
   folder with the same inputs is resumed.
3. Ranks the run's oof_predictions.csv with jobtitles.reporting.label_issues (suggested labels = the run's own
   cross-fitted decisions, the `predicted` column) and reports precision and recall of the flagged set against
   the planted rows, and precision among the N worst rows (N = number planted). Target: top-N precision >= 0.7.
4. With `--run_dir`, also prints the top `--top` flagged rows of an existing run of the unmodified file, for a
   human read.

Everything is printed; `--json` gets the figures. `--max_rows N` uses a seeded sample of N rows (trials).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENIORITY, DEPARTMENT = "Column 1", "Column 2"


def plant(records: list[list[str]], header: list[str], rate: float, seed: int):
    """Swap one label of round(rate * n) rows for another of the same column. Returns new records and
    {record index: (column, old, new)}."""
    rng = np.random.default_rng(seed)
    cols = {name: header.index(name) for name in (SENIORITY, DEPARTMENT)}
    vocab = {name: Counter(r[j].strip() for r in records if j < len(r) and r[j].strip()) for name, j in cols.items()}
    candidates = [i for i, r in enumerate(records) if any(j < len(r) and r[j].strip() for j in cols.values())]
    chosen = rng.choice(candidates, size=round(rate * len(records)), replace=False)
    out = [list(r) for r in records]
    planted = {}
    for i in sorted(int(c) for c in chosen):
        names = [name for name, j in cols.items() if j < len(out[i]) and out[i][j].strip()]
        name = names[rng.integers(len(names))]
        old = out[i][cols[name]].strip()
        others = [lab for lab in vocab[name] if lab != old]
        weights = np.array([vocab[name][lab] for lab in others], dtype=float)
        new = others[rng.choice(len(others), p=weights / weights.sum())]
        out[i][cols[name]] = new
        planted[i] = (name, old, new)
    return out, planted


def write_csv(path: Path, header: list[str], records: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(records)


def train(planted_csv: Path, run_dir: Path, extra: str) -> float:
    cmd = [sys.executable, "train.py", "--config", "configs/base.yaml", "--train_file", str(planted_csv),
           "--output_dir", str(run_dir), "--final_model", "false", "--overwrite", "true", *shlex.split(extra)]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT)
    if res.returncode != 0:
        sys.exit(f"train.py failed with exit code {res.returncode}")
    return time.perf_counter() - start


def rank_run(run_dir: Path):
    from jobtitles.reporting.label_issues import find_label_issues, read_oof_predictions

    titles, rows, y, labels, scores, predicted = read_oof_predictions(run_dir / "oof_predictions.csv")
    start = time.perf_counter()
    issues = find_label_issues(titles, rows, y, labels, scores, predicted)
    return issues, time.perf_counter() - start, predicted, y, rows


def pr(found: set[int], truth: set[int]) -> dict:
    hit = len(found & truth)
    return {"n": len(found), "hits": hit, "precision": hit / len(found) if found else None,
            "recall": hit / len(truth) if truth else None}


def evaluate(issues, predicted: np.ndarray, y: np.ndarray, rows: list[int], planted_rows: set[int]) -> dict:
    present = planted_rows & set(rows)
    by_quality = [r.row for r in sorted(issues.rows, key=lambda r: (r.quality if r.quality is not None else 2.0, r.row))]
    n = len(present)
    disagree = {row for row, p, g in zip(rows, predicted, y) if (p != (g > 0.5)).any()}
    return {
        "n_planted_in_run": n,
        "flagged_model": pr({r.row for r in issues.rows if r.model_flagged}, present),
        "flagged_all": pr({r.row for r in issues.rows if r.flagged}, present),
        "top_n": pr(set(by_quality[:n]), present),
        "top_2n": pr(set(by_quality[:2 * n]), present),
        "predicted_differs": pr(disagree, present),  # reference: every row whose decision differs from its labels
        "conflict_rows": issues.n_conflict_rows,
    }


def fmt(d: dict) -> str:
    p = "-" if d["precision"] is None else f"{d['precision']:.3f}"
    r = "-" if d["recall"] is None else f"{d['recall']:.3f}"
    return f"{d['n']:>5} rows  {d['hits']:>4} planted  precision {p}  recall {r}"


def show(issues, top: int, planted: dict[int, tuple] | None = None) -> list[dict]:
    shown = []
    for r in issues.flagged[:top]:
        mark = ""
        if planted is not None:
            mark = "PLANTED " + "{}: {} -> {}".format(*planted[r.row]) if r.row in planted else "-"
        q = "    -" if r.quality is None else f"{r.quality:.3f}"
        print(f"  {r.row:>6} {q} {r.kind:<9} {r.title[:48]:<48} {' | '.join(r.given)} -> {' | '.join(r.suggested)}"
              + (f"   [{mark}]" if mark else ""))
        shown.append({"row": r.row, "title": r.title, "given": r.given, "suggested": r.suggested,
                      "quality": r.quality, "kind": r.kind, "conflict_rows": r.conflict_rows, "planted": mark or None})
    return shown


def commit() -> str | None:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return res.stdout.strip() or None


def device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"CPU ({platform.processor() or platform.machine()})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path, help="the labelled CSV (Title;Column 1 = seniority;Column 2 = department)")
    p.add_argument("--json", type=Path, required=True, help="write the figures here")
    p.add_argument("--out_dir", type=Path, default=ROOT / "outputs" / "bench_label_issues")
    p.add_argument("--rate", type=float, default=0.02, help="share of rows given a wrong label")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--max_rows", type=int, default=None, help="a seeded sample of this many rows (trials)")
    p.add_argument("--extra", default="", help="more train.py flags, e.g. \"--n_splits 3 --num_train_epochs 1\"")
    p.add_argument("--run_dir", type=Path, default=None, help="an existing run of the UNMODIFIED file: print its top flagged rows")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)

    from jobtitles.core.data import read_rows
    from jobtitles.reporting.label_issues import write_label_issues

    header, recs = read_rows(args.csv)
    records = [cells for _, cells in recs]
    if args.max_rows and args.max_rows < len(records):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(records), args.max_rows, replace=False))
        records = [records[i] for i in keep]
    planted_records, planted_idx = plant(records, header, args.rate, args.seed)
    planted = {i + 2: v for i, v in planted_idx.items()}  # spreadsheet rows of the planted CSV
    planted_csv = args.out_dir / "planted.csv"
    write_csv(planted_csv, header, planted_records)
    (args.out_dir / "planted_rows.txt").write_text(
        "".join(f"{row}  # {col}: {old} -> {new}\n" for row, (col, old, new) in planted.items()), encoding="utf-8")
    print(f"planted {len(planted)} label errors in {len(records)} rows ({args.rate:.1%}, seed {args.seed}): "
          f"{Counter(c for c, _, _ in planted.values())}; {planted_csv}", flush=True)

    run_dir = args.out_dir / "run"
    train_seconds = train(planted_csv, run_dir, args.extra)
    issues, li_seconds, predicted, y, rows = rank_run(run_dir)
    path = write_label_issues(run_dir, issues)
    figures = evaluate(issues, predicted, y, rows, set(planted))
    n = figures["n_planted_in_run"]
    print(f"\nlabel issues of the planted run ({li_seconds:.1f} s, {path}); {n} planted rows in the run "
          f"({len(planted) - n} dropped by the loader){'; ' + issues.note if issues.note else ''}")
    print(f"  flagged by cleanlab        {fmt(figures['flagged_model'])}")
    print(f"  flagged incl. conflicts    {fmt(figures['flagged_all'])}")
    print(f"  {n} worst by quality       {fmt(figures['top_n'])}   (target precision >= 0.7)")
    print(f"  {2 * n} worst by quality      {fmt(figures['top_2n'])}")
    print(f"  reference: predicted != given {fmt(figures['predicted_differs'])}")
    print(f"\ntop {args.top} flagged rows of the planted run:")
    show(issues, args.top, planted)

    out = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "commit": commit(),
           "device": device(), "data": str(args.csv), "n_rows": len(records), "rate": args.rate, "seed": args.seed,
           "extra": args.extra, "n_planted": len(planted), "planted_by_column": dict(Counter(c for c, _, _ in planted.values())),
           "train_seconds": round(train_seconds, 1), "label_issues_seconds": round(li_seconds, 2),
           "ranked": issues.ranked, "note": issues.note, **figures,
           "target_top_n_precision": 0.7,
           "target_met": figures["top_n"]["precision"] is not None and figures["top_n"]["precision"] >= 0.7}
    if args.run_dir is not None:
        clean, clean_seconds, *_ = rank_run(args.run_dir)
        write_label_issues(args.out_dir / "unmodified", clean)
        print(f"\nunmodified run {args.run_dir}: {clean.n_flagged} flagged ({clean.n_model_flagged} by cleanlab, "
              f"{clean.n_conflict_rows} conflict rows); top {args.top} (all rows: {args.out_dir / 'unmodified' / 'label_issues.csv'}):")
        out["unmodified"] = {"run_dir": str(args.run_dir), **clean.summary(), "top": show(clean, args.top)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nfigures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
