"""Static against dynamic int8 (and fp32 ONNX) on one model, in one process: throughput, agreement with PyTorch,
and how far a title's scores move with its batch-mates.

    python bench/int8_modes.py --model outputs/base/model [--rounds 3]

The model folder is copied twice into a temporary folder and exported there (`export_model`, static and
`static=False`), so the folder itself is not touched. Throughput: the parity titles in TitleClassifier's own
batches (64, shortest first, tokenized once beforehand), each file run in turn for --rounds rounds with two
intra-op threads; the median round is printed. Batch-mates: 300 titles scored alone against the same titles in
one call, and all titles in two orders.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def throughput(files: dict[str, Path], feeds: list[dict], n: int, rounds: int) -> dict[str, list[float]]:
    import onnxruntime as ort

    sessions = {}
    for name, path in files.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
        sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for feed in feeds[:5]:  # warm-up
            sessions[name].run(None, feed)
    rates: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(rounds):  # interleaved: a slow moment of the machine hits every file alike
        for name, session in sessions.items():
            start = time.perf_counter()
            for feed in feeds:
                session.run(None, feed)
            rates[name].append(n / (time.perf_counter() - start))
    return rates


def batch_mates(model: Path, titles: list[str]) -> tuple[float, float, int]:
    """(max score change alone vs in one call, max change between two orders, label sets changed by order)."""
    from jobtitles.predict.inference import TitleClassifier

    clf = TitleClassifier(model, backend="onnx-int8", batch_size=64)
    together = clf.predict_scores(titles)
    alone = np.vstack([clf.predict_scores([t]) for t in titles[:300]])
    order = np.random.default_rng(0).permutation(len(titles))
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    shuffled = clf.predict_scores([titles[i] for i in order])[back]
    changed = int((clf.decide(shuffled) != clf.decide(together)).any(axis=1).sum())
    return float(np.abs(alone - together[:300]).max()), float(np.abs(shuffled - together).max()), changed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from jobtitles.predict.export import export_model, parity_rows
    from jobtitles.predict.inference import TitleClassifier

    with tempfile.TemporaryDirectory() as tmp:
        copies, lines = {}, {}
        for mode in ("static", "dynamic"):
            copies[mode] = Path(tmp) / mode / "model"
            shutil.copytree(args.model, copies[mode], ignore=shutil.ignore_patterns("onnx"))
            said: list[str] = []
            start = time.perf_counter()
            export_model(copies[mode], int8=True, say=said.append, static=mode == "static", fallback=False)
            lines[mode] = [line for line in said if line.startswith("parity")] + [
                f"export + parity checks {time.perf_counter() - start:.0f} s"]
        titles = parity_rows(args.model, None)[0]
        clf = TitleClassifier(copies["static"], backend="torch", batch_size=64)
        feeds = list(clf.model_feeds(titles, ("input_ids", "attention_mask")))
        files = {"fp32 ONNX": copies["static"] / "onnx" / "model.onnx",
                 "int8 static": copies["static"] / "onnx" / "model_int8.onnx",
                 "int8 dynamic": copies["dynamic"] / "onnx" / "model_int8.onnx"}
        rates = throughput(files, feeds, len(titles), args.rounds)
        print(f"{platform.processor() or platform.machine()}; {len(titles)} parity titles of {args.model}")
        for name, path in files.items():
            print(f"{name:14s} {statistics.median(rates[name]):7.0f} titles/s (rounds "
                  f"{', '.join(f'{r:.0f}' for r in rates[name])}), {path.stat().st_size / 1e6:.1f} MB")
        for mode in ("static", "dynamic"):
            alone, orders, changed = batch_mates(copies[mode], titles)
            print(f"int8 {mode}: alone vs in a batch max score change {alone:.5f}; two orders {orders:.5f}, "
                  f"label sets changed {changed}")
            for line in lines[mode]:
                print(f"  {line}")


if __name__ == "__main__":
    main()
