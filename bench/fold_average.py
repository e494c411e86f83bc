"""The shipped weights: the final model alone, the uniform average of the fold models' and the final model's
weights (`fold_average`), or the mean of those models' scores (an ensemble), measured on titles no model of the
run saw (an outer split: the run never reads them), with the run's shipped rule applied to each.

    python bench/fold_average.py ../shared/data/job_titles_seniority_department.csv --size 2500 --seeds 0,1,2

Each seed samples `size` rows, keeps a seeded 20% out, and trains one run (`--fold_average true`) on the rest:
its folds/fold_k/model and folds/final/model hold every model's own weights. Gains are per held-out title,
paired (the same titles for each), with their noise (std of the per-title difference / sqrt(titles)).
"""

from __future__ import annotations

import argparse
import csv as csv_module
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def split_file(csv: Path, size: int, seed: int, out_dir: Path) -> tuple[Path, list[str], list[str]]:
    """(the run's training file, the held-out titles, their label cells joined by ';')."""
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    rng = np.random.default_rng(seed)
    rows = [rows[i] for i in np.sort(rng.choice(len(rows), min(size, len(rows)), replace=False))]
    held = set(rng.choice(len(rows), len(rows) // 5, replace=False).tolist())
    train = [r for i, r in enumerate(rows) if i not in held]
    out = out_dir / "train.csv"
    out.write_text("\n".join([header, *train]) + "\n", encoding="utf-8")
    test = list(csv_module.reader([rows[i] for i in sorted(held)], delimiter=";"))
    return out, [t[0] for t in test], [";".join(t[1:]) for t in test]


def model_scores(folder: Path, tokenizer, titles: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(titles), 128):
            enc = tokenizer(titles[start:start + 128], padding=True, truncation=True, max_length=64,
                            return_tensors="pt")
            out.append(torch.sigmoid(model(**enc).logits).numpy())
    return np.concatenate(out)


def evaluate(run: Path, titles: list[str], cells: list[str], n_splits: int) -> dict:
    from jobtitles import TitleClassifier

    clf = TitleClassifier(run / "model")
    gold = np.zeros((len(titles), len(clf.labels)), dtype=bool)
    for i, cell in enumerate(cells):
        for lab in (c.strip() for c in cell.split(";")):
            if lab in clf.labels:
                gold[i, clf.labels.index(lab)] = 1
    folds = [model_scores(run / "folds" / f"fold_{k}" / "model", clf.tokenizer, titles) for k in range(n_splits)]
    final = model_scores(run / "folds" / "final" / "model", clf.tokenizer, titles)
    scores = {"final model alone": final, "weight average (fold_average)": clf.predict_scores(titles),
              "score ensemble (6 models)": np.mean([*folds, final], axis=0)}
    out = {}
    for name, s in scores.items():
        pred = clf.decide(s).astype(bool)
        exact = (pred == gold).all(axis=1).astype(float)
        tp, fp, fn = (pred & gold).sum(), (pred & ~gold).sum(), (~pred & gold).sum()
        out[name] = {"exact": exact, "micro_f1": float(2 * tp / max(2 * tp + fp + fn, 1))}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path)
    p.add_argument("--size", type=int, default=2500)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out_dir", type=Path, default=ROOT / "outputs" / "fold_average")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        folder = args.out_dir / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        train, titles, cells = split_file(args.csv, args.size, seed, folder)
        run = folder / "run"
        t0 = time.perf_counter()
        cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "base.yaml"),
               "--train_file", str(train), "--output_dir", str(run), "--fold_average", "true",
               "--label_issues", "false"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=open(folder / "run.log", "w"))
        res = evaluate(run, titles, cells, 5)
        base = res["final model alone"]["exact"]
        row = {"seed": seed, "held_out": len(titles), "seconds": time.perf_counter() - t0}
        for name, r in res.items():
            diff = r["exact"] - base
            row[name] = {"subset_accuracy": float(r["exact"].mean()), "micro_f1": r["micro_f1"],
                         "gain": float(diff.mean()), "noise": float(diff.std(ddof=1) / np.sqrt(len(diff)))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| seed (held-out titles) | shipped weights | subset accuracy (gain vs final alone ± noise) | micro-F1 |")
    print("|---|---|---|---|")
    for row in rows:
        for name in ("final model alone", "weight average (fold_average)", "score ensemble (6 models)"):
            r = row[name]
            print(f"| {row['seed']} ({row['held_out']}) | {name} | {r['subset_accuracy']:.4f} "
                  f"({r['gain']:+.4f} ± {r['noise']:.4f}) | {r['micro_f1']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
