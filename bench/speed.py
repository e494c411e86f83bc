"""Speed benchmark: the project's defaults against the classic recipe, measured in the same session.

    python bench/speed.py                                   # sample data, embedded encoder, all parts
    python bench/speed.py --csv ../shared/data/job_titles_seniority_department.csv --parts cv
    python bench/speed.py --parts infer --model_dir outputs/base/model

Classic recipe = batch 4, fp32, every title padded to 128 tokens, 3 epochs, lr 2e-5, one title at a time at
prediction. Each setting runs in its own subprocess (clean peak-memory figures); ratios are printed against the
classic figure of the same run. Parts:
  train  steady-state training throughput (titles/s after warm-up steps)
  cv     wall time of the full K-fold CV + final model, and its CV micro-F1 / subset accuracy
  infer  batch-1 latency (median, p95, tokenization included) and batched throughput: classic, torch, ONNX
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "configs" / "base.yaml"
CLASSIC = ["--per_device_train_batch_size", "4", "--learning_rate", "2e-5", "--num_train_epochs", "3",
           "--max_length", "128", "--pad_to_max_length", "true", "--train_sampling_strategy", "random",
           "--warmup_steps", "0", "--weight_decay", "0", "--precision", "fp32", "--head_init", "random",
           "--pos_weight", "none"]  # the classic recipe: unweighted BCE
SETTINGS = {"classic": CLASSIC, "default": [], "default-fp32": ["--precision", "fp32"],
            "default-bf16": ["--precision", "bf16"], "default+compile": ["--torch_compile", "true"],
            "default-1-thread": ["--cpu_threads", "1"]}


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} CPU"


# ----------------------------------------------------------------------------------------------------- workers
def worker_train(setting: str, csv: str, model: str, warmup: int, steps: int) -> dict:
    from transformers import TrainerCallback

    import torch

    from jobtitles.train.config import parse_config
    from jobtitles.core.tokenization import training_dataset
    from jobtitles.train.training import FoldRun, build_model, cpu_threads, load_tokenizer, resolve_precision, run_args

    with tempfile.TemporaryDirectory() as tmp:
        project, training = parse_config(["--config", str(BASE_CONFIG), "--train_file", csv, "--model_name_or_path",
                                          model, "--max_steps", str(warmup + steps), "--output_dir", tmp,
                                          "--logging_steps", "1000", *SETTINGS[setting]])
        if not torch.cuda.is_available():
            torch.set_num_threads(cpu_threads(project.model.cpu_threads, 1))
        data = project.data.load(project.run.n_splits)
        tok = load_tokenizer(project.model.model_name_or_path)
        ds = training_dataset(data.titles, data.y, data.rows, tok, project.model.max_length,
                              pad_to_max_length=project.model.pad_to_max_length)
        stamps: list[float] = []

        class Clock(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                stamps.append(time.perf_counter())

        run = FoldRun(build_model(project.model.model_name_or_path, data.labels, training.seed),
                      run_args(training, Path(tmp), project.model.precision), ds, tok, data.y, "none")
        run.trainer.add_callback(Clock())
        run.train()
    batch = training.per_device_train_batch_size
    elapsed = stamps[-1] - stamps[warmup - 1]
    return {"titles_per_s": batch * (len(stamps) - warmup) / elapsed, "batch": batch, "peak_mb": peak_memory_mb(),
            "precision": resolve_precision(project.model.precision).name if not training.bf16 else "bf16",
            "threads": torch.get_num_threads(), "compile": bool(training.torch_compile)}


def worker_cv(setting: str, csv: str, model: str, n_splits: int) -> dict:
    from jobtitles.train.config import parse_config
    from jobtitles.core.io_utils import read_json
    from jobtitles.train.cv import cross_validate

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--config", str(BASE_CONFIG), "--train_file", csv, "--model_name_or_path", model,
                "--n_splits", str(n_splits), "--output_dir", str(Path(tmp) / "run"), *SETTINGS[setting]]
        start = time.perf_counter()
        run_dir = cross_validate(*parse_config(argv))
        wall = time.perf_counter() - start
        res = read_json(run_dir / "cv_results.json")
    out = {"wall_s": wall, "peak_mb": peak_memory_mb(), "n_rows": res["n_rows"],
           "precision": res.get("precision", {}).get("name")}
    shipped = res["decision_rule"]["variant"]
    for variant, suffix in (("model", ""), (shipped, "_shipped"), ("baseline", "_baseline")):
        for metric in ("micro_f1", "subset_accuracy", "macro_f1"):
            if variant in res["summary"]:
                out[metric + suffix] = res["summary"][variant][metric]["mean"]  # mean over folds
                out[metric + suffix + "_std"] = res["summary"][variant][metric]["std"]
    return out


def _latency(fn, titles: list[str]) -> dict:
    for t in titles[:20]:
        fn(t)  # warm-up
    times = []
    for t in titles:
        start = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "titles_per_s": 1000 / ms.mean()}


def _throughput(fn, titles: list[str]) -> dict:
    fn(titles[:256])  # warm-up
    start = time.perf_counter()
    fn(titles)
    return {"titles_per_s": len(titles) / (time.perf_counter() - start)}


def worker_infer(model_dir: str, csv: str, n_latency: int, batch_size: int) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from jobtitles.core.data import load_titles
    from jobtitles.predict.export import export_onnx
    from jobtitles.predict.inference import TitleClassifier

    titles = load_titles(csv)[0]
    sample = [titles[i] for i in np.random.default_rng(0).permutation(len(titles))[:n_latency]]
    out = {}
    # classic: one title at a time, padded to 128, eager fp32 (or the GPU) -- the recipe's check_predictions loop
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()

    def classic(title: str):
        with torch.inference_mode():
            enc = tok(title, padding="max_length", max_length=128, truncation=True, return_tensors="pt").to(device)
            return torch.sigmoid(model(**enc).logits).cpu().numpy()

    out["classic batch-1 (pad 128, fp32)"] = _latency(classic, sample)
    del model
    clf = TitleClassifier(model_dir, batch_size=batch_size)
    out["torch batch-1"] = _latency(clf.predict_scores, sample)
    out[f"torch batched ({batch_size}, length-sorted)"] = _throughput(clf.predict_scores, titles)
    out.update(_torch_variants(model_dir, device, sample, titles, batch_size))
    if device == "cpu":
        if not (Path(model_dir) / "onnx" / "model_int8.onnx").is_file():
            export_onnx(Path(model_dir), int8=True)
        for backend in ("onnx", "onnx-int8"):
            c = TitleClassifier(model_dir, backend=backend, batch_size=batch_size)
            out[f"{backend} batch-1"] = _latency(c.predict_scores, sample)
            out[f"{backend} batched ({batch_size}, length-sorted)"] = _throughput(c.predict_scores, titles)
        one = TitleClassifier(model_dir, backend="onnx-int8", batch_size=batch_size, threads=1)
        out["onnx-int8 batch-1, 1 thread"] = _latency(one.predict_scores, sample)
        out[f"onnx-int8 batched ({batch_size}), 1 thread"] = _throughput(one.predict_scores, titles)
    out["peak_mb"] = peak_memory_mb()
    return out


def _torch_variants(model_dir: str, device: str, sample: list[str], titles: list[str], batch_size: int) -> dict:
    """The torch backend with other arithmetic, through TitleClassifier (same batching, tokenization and score
    sources as every other row): bf16 weights, and torch.compile of the fp32 model (its compile time is shown
    and included in an end-to-end figure)."""
    import torch

    from jobtitles.predict.inference import TitleClassifier

    out = {}
    bf16 = TitleClassifier(model_dir, batch_size=batch_size, dtype="bfloat16")
    out["torch bf16 batch-1"] = _latency(bf16.predict_scores, sample)
    out[f"torch bf16 batched ({batch_size}, length-sorted)"] = _throughput(bf16.predict_scores, titles)
    del bf16
    clf = TitleClassifier(model_dir, batch_size=batch_size, dtype="float32")
    clf.torch_model.forward = torch.compile(clf.torch_model.forward, dynamic=True)
    start = time.perf_counter()
    clf.predict_scores(titles[:batch_size])  # first call compiles
    compile_s = time.perf_counter() - start
    run = _throughput(clf.predict_scores, titles)
    end_to_end = len(titles) / (compile_s + len(titles) / run["titles_per_s"])
    out[f"torch.compile batched ({batch_size})"] = {**run, "compile_s": compile_s}
    out[f"torch.compile batched ({batch_size}), compile time included"] = {"titles_per_s": end_to_end}
    return out


def random_distilbert(folder: Path, labels: list[str]) -> str:
    """distilbert-base-uncased's architecture (768 wide, 6 layers) with random weights: latency does not depend
    on the weights, and the real checkpoint needs the Hub."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    from jobtitles.core.embedded import embedded_model_dir

    tok = DistilBertTokenizerFast(vocab_file=str(embedded_model_dir() / "vocab.txt"), do_lower_case=True)
    cfg = DistilBertConfig(num_labels=len(labels), id2label=dict(enumerate(labels)),
                           label2id={lab: i for i, lab in enumerate(labels)}, problem_type="multi_label_classification")
    cfg.decision_thresholds = {lab: 0.5 for lab in labels}
    torch.manual_seed(0)
    DistilBertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


# ------------------------------------------------------------------------------------------------------- main
def spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"benchmark worker {args[:2]} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default=str(ROOT / "data" / "job_titles.csv"))
    p.add_argument("--model", default="embedded", help="encoder for train/cv (embedded, folder or Hub id)")
    p.add_argument("--parts", default="train,cv,infer")
    p.add_argument("--settings", default="classic,default")
    p.add_argument("--n_splits", type=int, default=5)
    p.add_argument("--warmup_steps", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--model_dir", help="trained model folder for infer (default: train one with the defaults)")
    p.add_argument("--random_distilbert", action="store_true",
                   help="infer with a random-weight distilbert-base-sized classifier (latency only)")
    p.add_argument("--n_latency", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--out", help="write all figures as JSON here")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        kind, *rest = args.worker
        fn = {"train": lambda s, c, m, w, n: worker_train(s, c, m, int(w), int(n)),
              "cv": lambda s, c, m, k: worker_cv(s, c, m, int(k)),
              "infer": lambda d, c, n, b: worker_infer(d, c, int(n), int(b))}[kind]
        print(json.dumps(fn(*rest)))
        return

    parts, settings = args.parts.split(","), args.settings.split(",")
    results: dict = {"machine": machine(), "csv": args.csv, "model": args.model, "date": time.strftime("%Y-%m-%d")}
    print(f"machine: {results['machine']}\ndata: {args.csv}\n")
    if "train" in parts:
        results["train"] = {s: spawn(["train", s, args.csv, args.model, str(args.warmup_steps), str(args.steps)])
                            for s in settings}
        print(table("training throughput (steady state)", results["train"], "titles_per_s", "titles/s", higher=True))
    if "cv" in parts:
        results["cv"] = {s: spawn(["cv", s, args.csv, args.model, str(args.n_splits)]) for s in settings}
        print(table(f"{args.n_splits}-fold CV + final model, end to end", results["cv"], "wall_s", "s", higher=False))
        for s, r in results["cv"].items():
            print(f"  {s}: shipped rule CV micro-F1 {r['micro_f1_shipped']:.4f} ± {r['micro_f1_shipped_std']:.4f}, "
                  f"subset acc. {r['subset_accuracy_shipped']:.4f} ± {r['subset_accuracy_shipped_std']:.4f}, "
                  f"macro-F1 {r['macro_f1_shipped']:.4f} (configured thresholds: {r['micro_f1']:.4f} / "
                  f"{r['subset_accuracy']:.4f})")
    if "infer" in parts:
        model_dir = args.model_dir
        if args.random_distilbert:
            from jobtitles.core.data import load_labeled_csv

            model_dir = random_distilbert(Path(tempfile.mkdtemp()), load_labeled_csv(args.csv).labels)
        elif model_dir is None:
            tmp = tempfile.mkdtemp()
            from jobtitles.train.config import parse_config
            from jobtitles.train.cv import cross_validate

            sys.argv = [sys.argv[0]]
            run_dir = cross_validate(*parse_config(["--config", str(BASE_CONFIG), "--train_file", args.csv,
                                                    "--model_name_or_path", args.model, "--output_dir", tmp,
                                                    "--n_splits", "2", "--baseline", "false"]))
            model_dir = str(run_dir / "model")
        results["infer"] = spawn(["infer", model_dir, args.csv, str(args.n_latency), str(args.batch_size)])
        print(infer_table(results["infer"]))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


def table(title: str, rows: dict, key: str, unit: str, higher: bool) -> str:
    base = rows.get("classic", {}).get(key)
    lines = [f"\n{title}", f"| setting | precision | {unit} | vs classic | peak memory MB |", "|---|---|---|---|---|"]
    for s, r in rows.items():
        ratio = (r[key] / base if higher else base / r[key]) if base else float("nan")
        lines.append(f"| {s} | {r.get('precision')} | {r[key]:.1f} | {ratio:.1f}x | {r['peak_mb']:.0f} |")
    return "\n".join(lines)


def infer_table(res: dict) -> str:
    classic = res["classic batch-1 (pad 128, fp32)"]["titles_per_s"]
    lines = ["\ninference (tokenization included)", "| setting | median ms | p95 ms | titles/s | vs classic |",
             "|---|---|---|---|---|"]
    for name, r in res.items():
        if name == "peak_mb":
            continue
        lines.append(f"| {name} | {r.get('median_ms', float('nan')):.2f} | {r.get('p95_ms', float('nan')):.2f} | "
                     f"{r['titles_per_s']:.0f} | {r['titles_per_s'] / classic:.1f}x |")
    compiled = [r["compile_s"] for r in res.values() if isinstance(r, dict) and "compile_s" in r]
    extra = f"\ntorch.compile: {compiled[0]:.1f} s to compile" if compiled else ""
    return "\n".join(lines) + extra + f"\npeak memory of the inference worker: {res['peak_mb']:.0f} MB"


if __name__ == "__main__":
    main()
