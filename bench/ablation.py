"""Quality ablation on one cross-validation fold: the defaults against variants, with the TF-IDF baseline and
frozen-encoder probes on the same fold. Cheaper than K full runs when choosing a setting.

    python bench/ablation.py --csv ../shared/data/job_titles_seniority_department.csv \
        --variant "random head=--head_init random" \
        --variant "random head, pos_weight=--head_init random --pos_weight sqrt_inverse_frequency" \
        --variant "defaults=" --probes

Each variant is the base config plus its flags (any train.py flag), trained on fold `--fold` of the run's
MultilabelStratifiedKFold split in its own subprocess, scored on that fold's test rows (threshold 0.5,
at_least_one) and on its own training rows. Prints one table; --out writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "configs" / "base.yaml"
METRICS = ("micro_f1", "macro_f1", "subset_accuracy")


def _setup(csv: str, flags: list[str], tmp: str):
    from jobtitles.train.config import parse_config
    from jobtitles.core.tokenization import training_dataset
    from jobtitles.train.folds import make_folds
    from jobtitles.train.training import load_tokenizer

    project, training = parse_config(["--config", str(BASE_CONFIG), "--train_file", csv, "--output_dir", tmp, *flags])
    data = project.data.load(project.run.n_splits)
    tok = load_tokenizer(project.model.model_name_or_path)
    ds = training_dataset(data.titles, data.y, data.rows, tok, project.model.max_length)
    folds = make_folds(data.y, project.run.n_splits, project.run.cv_shuffle, training.seed)
    return project, training, data, tok, ds, folds


def _scores(y, scores) -> dict:
    from jobtitles.core.decision_rule import DecisionRule
    from jobtitles.core.metrics import multilabel_metrics

    rule = DecisionRule.uniform([str(i) for i in range(scores.shape[1])], 0.5, at_least_one=True)
    m = multilabel_metrics(y, rule.decide(scores))
    return {k: m[k] for k in METRICS}


def worker_variant(csv: str, fold: int, flags: list[str]) -> dict:
    from jobtitles.train.training import FoldRun, fresh_model, run_args

    with tempfile.TemporaryDirectory() as tmp:
        project, training, data, tok, ds, folds = _setup(csv, flags, tmp)
        train, test = folds[fold]
        start = time.perf_counter()
        model = fresh_model(project.model.model_name_or_path, data.labels, training.seed + fold, project.model.head_init,
                            project.model.probe_c, ds.select(train), data.y[train], tok)
        run = FoldRun(model, run_args(training, Path(tmp), project.model.precision), ds.select(train), tok,
                      data.y[train], project.model.pos_weight)
        run.train()
        seconds = time.perf_counter() - start
        return {"test": _scores(data.y[test], run.scores(ds.select(test))),
                "train": _scores(data.y[train], run.scores(ds.select(train))), "seconds": seconds}


def worker_probes(csv: str, fold: int) -> dict:
    """TF-IDF baseline, and logistic regressions on the frozen encoder's mean-pooled / [CLS] / pooler outputs."""
    import numpy as np
    import torch
    from transformers import AutoModel

    from jobtitles.core.baseline import baseline_scores
    from jobtitles.core.embedded import resolve_model_path
    from jobtitles.train.head_init import fit_probe

    with tempfile.TemporaryDirectory() as tmp:
        project, training, data, tok, ds, folds = _setup(csv, [], tmp)
    train, test = folds[fold]
    out = {"TF-IDF + LR (baseline)": {"test": _scores(data.y[test], baseline_scores(data.titles, data.y,
                                                                                      [folds[fold]])[test])}}
    encoder = AutoModel.from_pretrained(resolve_model_path(project.model.model_name_or_path)).eval()
    feats: dict[str, list] = {"mean-pooled": [], "[CLS]": [], "pooler": []}
    with torch.inference_mode():
        for i in range(0, len(data.titles), 256):
            enc = tok(data.titles[i:i + 256], padding=True, truncation=True, max_length=project.model.max_length,
                      return_tensors="pt")
            o = encoder(**enc)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            feats["mean-pooled"].append(((o.last_hidden_state * mask).sum(1) / mask.sum(1)).numpy())
            feats["[CLS]"].append(o.last_hidden_state[:, 0].numpy())
            if getattr(o, "pooler_output", None) is not None:
                feats["pooler"].append(o.pooler_output.numpy())
    for name, parts in feats.items():
        if not parts:
            continue
        x = np.concatenate(parts)
        w, b = fit_probe(x[train], data.y[train], c=project.model.probe_c, seed=training.seed)
        scores = 1 / (1 + np.exp(-(x[test] @ w.T + b)))
        out[f"frozen encoder, {name} + LR probe (C={project.model.probe_c})"] = {"test": _scores(data.y[test], scores)}
    return out


def spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"ablation worker {args[:1]} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default=str(ROOT / "data" / "job_titles.csv"))
    p.add_argument("--fold", type=int, default=0, help="0-based fold of the base config's split")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help="a named setting: base config plus these train.py flags (repeatable)")
    p.add_argument("--probes", action="store_true", help="also the TF-IDF baseline and frozen-encoder probes")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        kind, csv, fold, *flags = json.loads(args.worker)
        res = worker_variant(csv, int(fold), flags) if kind == "variant" else worker_probes(csv, int(fold))
        print(json.dumps(res))
        return
    variants = [v.split("=", 1) if "=" in v else (v, "") for v in args.variant] or [("defaults", "")]
    rows: dict[str, dict] = {}
    for name, flags in variants:
        rows[name] = spawn(["variant", args.csv, str(args.fold), *shlex.split(flags)])
        print(f"# {name}: {json.dumps(rows[name])}", flush=True)
    if args.probes:
        rows.update(spawn(["probes", args.csv, str(args.fold)]))
    print(f"\nfold {args.fold + 1} of {Path(args.csv).name}, threshold 0.5 + at_least_one, test rows of the fold")
    print("| setting | " + " | ".join(METRICS) + " | training-rows micro_f1 | seconds |")
    print("|---|" + "---|" * (len(METRICS) + 2))
    for name, r in rows.items():
        train = f"{r['train']['micro_f1']:.4f}" if "train" in r else "-"
        secs = f"{r['seconds']:.0f}" if "seconds" in r else "-"
        print(f"| {name} | " + " | ".join(f"{r['test'][m]:.4f}" for m in METRICS) + f" | {train} | {secs} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
