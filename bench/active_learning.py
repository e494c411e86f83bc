"""Active learning, simulated on a labelled set: does `jobtitles suggest` reach a quality with fewer labels than
labelling titles at random?

    python bench/active_learning.py --csv ../shared/data/job_titles_seniority_department.csv \
        --seed_size 200 --step 200 --rounds 4 --seeds 0,1,2 --plot docs/img/active_learning.png

A fixed held-out split (--test_fraction, drawn once) is never labelled or suggested. The rest is the pool, its
labels hidden. Each seed draws a random seed set from the pool; then each strategy adds --step titles per
round: `suggest` (jobtitles.active.suggest on the model of the round, the labelled titles as --train_file) or
`random`. After every round a model is trained on the labelled titles with the same settings for both
strategies (the base config with --flags; one model, no cross-validation: a fixed rule of threshold 0.5, at
least one label, one label per detected label group) and scored on the held-out split. Prints the learning
curves (subset accuracy and macro-F1, mean over seeds) and the labels `suggest` needs to reach random's last
figure (linear between rounds); --out writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("suggest", "random")


def load(csv: str):
    from jobtitles.core.data import load_labeled_csv

    data = load_labeled_csv(csv)
    seen, keep = set(), []
    for i, t in enumerate(data.titles):  # one row per title: a suggestion is then exactly one label to give
        key = " ".join(t.split()).casefold()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return data, np.asarray(keep)


def train_folder(data, rows: np.ndarray, folder: Path, flags: list[str], seed: int) -> float:
    """Train one model on `rows` with the base config + flags and save a model folder TitleClassifier loads."""
    from jobtitles.core.decision_rule import DecisionRule
    from jobtitles.core.label_groups import softmax_groups
    from jobtitles.core.tokenization import training_dataset
    from jobtitles.core.training_schema import TrainingSchema
    from jobtitles.train.config import parse_config
    from jobtitles.train.training import FoldRun, fresh_model, load_tokenizer, run_args

    project, training = parse_config(["--config", str(ROOT / "configs" / "base.yaml"), "--output_dir",
                                      str(folder.parent / "trainer"), "--seed", str(seed), "--progress", "none",
                                      *flags])
    m = project.model
    tok = load_tokenizer(m.model_name_or_path)
    titles = [data.titles[i] for i in rows]
    y = data.y[rows]
    ds = training_dataset(titles, y, list(range(len(rows))), tok, m.max_length)
    args = run_args(training, folder.parent / "trainer", m.precision, len(rows), m.min_train_steps)
    model = fresh_model(m.model_name_or_path, data.labels, seed, m.head_init, m.probe_c, ds, y, tok)
    run = FoldRun(model, args, ds, tok, y, m.pos_weight, softmax_groups(m.group_loss, data.groups, data.labels), [])
    run.train()
    rule = DecisionRule.uniform(data.labels, 0.5, at_least_one=True, groups=data.groups)
    model.config.update({**rule.to_config(), **TrainingSchema.of_training(
        "Title", "Column", ";", data.label_columns, None, data.groups).to_config()})
    tok.model_max_length = m.max_length
    run.trainer.save_model(str(folder))
    return run.train_seconds


def evaluate(data, folder: Path, test: np.ndarray) -> dict[str, float]:
    from jobtitles.core.metrics import multilabel_metrics
    from jobtitles.predict.inference import TitleClassifier

    clf = TitleClassifier(folder, batch_size=256)
    pred = clf.decide(clf.predict_scores([data.titles[i] for i in test]))
    m = multilabel_metrics(data.y[test], pred)
    return {"subset_accuracy": m["subset_accuracy"], "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"]}


def suggested_rows(data, folder: Path, pool: np.ndarray, labelled: np.ndarray, n: int, seed: int,
                   work: Path) -> np.ndarray:
    from jobtitles.active.suggest import SuggestArgs, suggest

    unlabelled = np.setdiff1d(pool, labelled)
    (work / "pool.txt").write_text("\n".join(data.titles[i] for i in unlabelled) + "\n", encoding="utf-8")
    (work / "labelled.txt").write_text("\n".join(data.titles[i] for i in labelled) + "\n", encoding="utf-8")
    picks, _ = suggest(SuggestArgs(pool=work / "pool.txt", n=n, model=folder,
                                   train_files=(work / "labelled.txt",), seed=seed))
    by_title = {" ".join(data.titles[i].split()): i for i in unlabelled}
    return np.asarray([by_title[" ".join(p.title.split())] for p in picks])


def simulate(data, pool: np.ndarray, test: np.ndarray, args, seed: int, strategy: str, work: Path) -> list[dict]:
    rng = np.random.default_rng(seed)
    labelled = rng.choice(pool, size=args.seed_size, replace=False)  # the same seed set for both strategies
    curve = []
    for r in range(args.rounds + 1):
        folder = work / f"{strategy}_{seed}_{r}" / "model"
        start = time.perf_counter()
        secs = train_folder(data, labelled, folder, args.flags, seed)
        point = {"round": r, "labels": int(len(labelled)), "added": int(len(labelled) - args.seed_size),
                 **evaluate(data, folder, test), "train_seconds": round(secs, 1)}
        if r < args.rounds:
            pick_rng = np.random.default_rng([seed, r])
            new = (suggested_rows(data, folder, pool, labelled, args.step, seed, folder.parent)
                   if strategy == "suggest" else
                   pick_rng.choice(np.setdiff1d(pool, labelled), size=args.step, replace=False))
            labelled = np.concatenate([labelled, new])
        point["seconds"] = round(time.perf_counter() - start, 1)
        curve.append(point)
        print(f"seed {seed} {strategy:>7} round {r}: {point['labels']} labels, subset {point['subset_accuracy']:.4f}, "
              f"macro-F1 {point['macro_f1']:.4f} ({point['seconds']:.0f} s)", flush=True)
    return curve


def labels_to_reach(added: list[int], values: list[float], target: float) -> float | None:
    """Added labels at which a curve first reaches `target`, linear between rounds (None: never)."""
    for k, v in enumerate(values):
        if v >= target:
            if k == 0:
                return float(added[0])
            a0, a1, v0 = added[k - 1], added[k], values[k - 1]
            return a0 + (a1 - a0) * (target - v0) / (v - v0)
    return None


def summary(results: dict) -> dict:
    out = {}
    for strategy in STRATEGIES:
        curves = results[strategy]
        out[strategy] = {m: np.mean([[p[m] for p in c] for c in curves], axis=0).tolist()
                         for m in ("subset_accuracy", "macro_f1", "micro_f1")}
        out[strategy]["subset_std"] = np.std([[p["subset_accuracy"] for p in c] for c in curves], axis=0).tolist()
    added = [p["added"] for p in results["random"][0]]
    target = out["random"]["subset_accuracy"][-1]
    need = labels_to_reach(added, out["suggest"]["subset_accuracy"], target)
    out["added"] = added
    out["random_last_subset"] = target
    out["suggest_labels_to_reach_it"] = need
    out["share_of_random_labels"] = None if need is None else need / added[-1]
    wins = [[s["subset_accuracy"] > r["subset_accuracy"] for s, r in zip(cs, cr)][1:]
            for cs, cr in zip(results["suggest"], results["random"])]
    out["suggest_ahead_per_round"] = [bool(a > b) for a, b in zip(out["suggest"]["subset_accuracy"][1:],
                                                                 out["random"]["subset_accuracy"][1:])]
    out["rounds_won_per_seed"] = [int(sum(w)) for w in wins]
    return out


def plot(results: dict, s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    labels = [p["labels"] for p in results["random"][0]]
    for ax, metric, name in ((axes[0], "subset_accuracy", "subset accuracy"), (axes[1], "macro_f1", "macro-F1")):
        for strategy, style in (("suggest", "o-"), ("random", "s--")):
            ax.plot(labels, s[strategy][metric], style, label=strategy)
        ax.set_xlabel("labelled titles")
        ax.set_title(f"{name} on the held-out split")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"jobtitles suggest vs random labelling, mean of {len(results['random'])} seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def parse(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", required=True)
    p.add_argument("--seed_size", type=int, default=200)
    p.add_argument("--step", type=int, default=200)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--test_fraction", type=float, default=0.2)
    p.add_argument("--flags", default="--min_train_steps 100", help="train.py flags for every model (quoted)")
    p.add_argument("--out", help="write every figure as JSON")
    p.add_argument("--plot", help="write the learning curves as PNG")
    args = p.parse_args(argv)
    args.flags = shlex.split(args.flags)
    return args


def main(argv: list[str]) -> int:
    from jobtitles.core.log import quiet_libraries, setup_logging

    args = parse(argv)
    # every module the loop uses, imported now: files edited while the benchmark runs do not change it
    import jobtitles.active.suggest  # noqa: F401
    import jobtitles.predict.inference  # noqa: F401
    import jobtitles.train.training  # noqa: F401

    setup_logging()
    quiet_libraries()
    import logging

    logging.getLogger("jobtitles").setLevel(logging.WARNING)
    data, rows = load(args.csv)
    order = np.random.default_rng(12345).permutation(rows)  # the held-out split: fixed, not per seed
    n_test = int(round(args.test_fraction * len(order)))
    test, pool = np.sort(order[:n_test]), np.sort(order[n_test:])
    print(f"{len(rows)} distinct titles: {len(test)} held out, {len(pool)} in the pool; flags {args.flags}")
    results = {s: [] for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(x) for x in args.seeds.split(",")]:
            for strategy in STRATEGIES:
                results[strategy].append(simulate(data, pool, test, args, seed, strategy, Path(tmp)))
    s = summary(results)
    print("\nlabels  " + "  ".join(f"{st:>16}" for st in STRATEGIES) + "   (subset accuracy / macro-F1, mean)")
    for k, p in enumerate(results["random"][0]):
        print(f"{p['labels']:>6}  " + "  ".join(f"{s[st]['subset_accuracy'][k]:.4f} / {s[st]['macro_f1'][k]:.4f}"
                                               for st in STRATEGIES))
    need = s["suggest_labels_to_reach_it"]
    print(f"random's last subset accuracy {s['random_last_subset']:.4f} with {s['added'][-1]} added labels; suggest "
          + (f"reaches it with {need:.0f} ({s['share_of_random_labels']:.0%})" if need is not None else "never reaches it")
          + f"; suggest ahead at rounds {s['suggest_ahead_per_round']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "curves": results, "summary": s}, indent=1))
    if args.plot:
        plot(results, s, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
