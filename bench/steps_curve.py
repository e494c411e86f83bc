"""How quality grows with optimizer steps, at several training-set sizes: the measurement behind the training
budget that grows slower than the data (`train_steps` in train/step_rule.py).

    python bench/steps_curve.py --csv ../shared/data/job_titles_seniority_department.csv \
        --sizes 1460,2920,5840 --fractions 0.125,0.25,0.5,1 --out /tmp/steps_curve.json

One held-out split (fold 0 of the default 5-fold MultilabelStratifiedKFold) is the test set for every model.
For each size, a seeded random subset of the other rows trains one model with the default settings for each
step count: a fraction of the default 4 epochs (`--fractions`; 1 = 4 epochs, min_train_steps not applied), the
linear schedule and warm-up scaled to the steps. Scored with threshold 0.5 and at least one label per title,
one label per detected exclusive group. Prints one table (micro-F1, subset accuracy, macro-F1, seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jobtitles.core.decision_rule import DecisionRule
from jobtitles.core.label_groups import softmax_groups
from jobtitles.core.metrics import multilabel_metrics
from jobtitles.core.tokenization import training_dataset
from jobtitles.train.config import parse_config
from jobtitles.train.folds import make_folds
from jobtitles.train.training import FoldRun, fresh_model, load_tokenizer, run_args, titles_per_step

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("micro_f1", "subset_accuracy", "macro_f1")


def one_model(project, training, data, ds, tok, train: np.ndarray, test: np.ndarray, steps: int,
              tmp: Path) -> dict:
    m = project.model
    args = dataclasses.replace(run_args(training, tmp, m.precision), max_steps=steps)
    start = time.perf_counter()
    model = fresh_model(m.model_name_or_path, data.labels, training.seed, m.head_init, m.probe_c, ds.select(train),
                        data.y[train], tok)
    run = FoldRun(model, args, ds.select(train), tok, data.y[train], m.pos_weight,
                  softmax_groups(m.group_loss, data.groups, data.labels), [])
    run.train()
    seconds = time.perf_counter() - start
    rule = DecisionRule.uniform(data.labels, 0.5, at_least_one=True, groups=data.groups)
    metrics = multilabel_metrics(data.y[test], rule.decide(run.scores(ds.select(test))))
    return {**{k: metrics[k] for k in METRICS}, "seconds": seconds, "train_seconds": run.train_seconds}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", required=True)
    p.add_argument("--sizes", default="1460,2920,5840", help="training rows per model (capped at the split's)")
    p.add_argument("--fractions", default="0.125,0.25,0.5,1", help="fractions of the default epochs' steps")
    p.add_argument("--out", help="write every figure as JSON here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        project, training = parse_config(["--config", str(ROOT / "src/jobtitles/configs/base.yaml"),
                                          "--train_file", args.csv, "--output_dir", tmp, "--progress", "none"])
        data = project.data.load(project.run.n_splits)
        tok = load_tokenizer(project.model.model_name_or_path)
        ds = training_dataset(data.titles, data.y, data.rows, tok, project.model.max_length)
        pool, test = make_folds(data.y, project.run.n_splits, project.run.cv_shuffle, training.seed)[0]
        rng = np.random.default_rng(training.seed)
        order = rng.permutation(pool)
        rows = []
        for size in (min(int(s), len(pool)) for s in args.sizes.split(",")):
            train = np.sort(order[:size])
            full = math.ceil(size / titles_per_step(training)) * training.num_train_epochs
            for fraction in (float(f) for f in args.fractions.split(",")):
                steps = max(1, round(full * fraction))
                r = one_model(project, training, data, ds, tok, train, test, steps, Path(tmp) / "trainer")
                rows.append({"size": size, "fraction": fraction, "steps": steps,
                             "epochs": steps * titles_per_step(training) / size, **r})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nheld-out: fold 1 of {Path(args.csv).name} ({len(test)} rows); threshold 0.5, at least one, groups")
    print("| training rows | steps | epochs | micro-F1 | subset acc. | macro-F1 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['steps']} | {r['epochs']:.2f} | {r['micro_f1']:.4f} | "
              f"{r['subset_accuracy']:.4f} | {r['macro_f1']:.4f} | {r['seconds']:.0f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
