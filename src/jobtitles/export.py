"""Export a trained model folder to ONNX (fp32, and dynamic int8 with --int8) and check parity with PyTorch.

    python -m jobtitles.export --model outputs/base/model --int8

The parity check runs on the run's cross-validation rows (oof_predictions.csv beside the model folder, or
--titles FILE.csv with labels): label-set agreement with PyTorch and micro-F1 against the gold labels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from jobtitles.errors import UserError, cli_entry, setup_logging

OPSET = 17
MIN_AGREEMENT = 0.995
MAX_F1_DROP = 0.005


class _Logits:
    """Wraps the model so the graph has plain tensor inputs and one `logits` output."""

    def __new__(cls, model):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

        return Wrapper()


def export_onnx(model_dir: Path, int8: bool) -> list[Path]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from jobtitles.inference import read_model_config

    read_model_config(model_dir)
    out_dir = model_dir / "onnx"
    out_dir.mkdir(exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    sample = tokenizer(["VP of Sales", "Senior Director, Corporate Communications (EMEA)"], padding=True,
                       return_tensors="pt")
    fp32 = out_dir / "model.onnx"
    tmp = out_dir / ".model.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(
            _Logits(model), (sample["input_ids"], sample["attention_mask"]), str(tmp),
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": {0: "batch"}},
            opset_version=OPSET, dynamo=False,  # TorchScript exporter: dynamic axes without onnxscript
        )
    tmp.replace(fp32)
    written = [fp32]
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = out_dir / "model_int8.onnx"
        qtmp = out_dir / ".model_int8.onnx.tmp"
        # per-channel weight scales: label-set agreement with PyTorch 99.6% vs 99.3% per-tensor on the benchmark data
        quantize_dynamic(str(fp32), str(qtmp), weight_type=QuantType.QInt8, per_channel=True)
        qtmp.replace(q)
        written.append(q)
    return written


def parity_rows(model_dir: Path, titles_file: Path | None) -> tuple[list[str], list[list[str]]]:
    from jobtitles.data import load_titles

    if titles_file is not None:
        titles, _, gold = load_titles(titles_file)
        if gold is None:
            raise UserError(f"{titles_file}: parity needs label columns ('Column 1', ...) beside the titles")
        return titles, gold
    oof = model_dir.parent / "oof_predictions.csv"
    if not oof.is_file():
        raise UserError(f"{oof} not found; pass --titles FILE.csv (titles with labels) for the parity check")
    import csv

    with oof.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    return [r["title"] for r in rows], [[g for g in r["gold"].split(" | ") if g] for r in rows]


def parity(model_dir: Path, backend: str, titles: list[str], gold: list[list[str]]) -> dict[str, float]:
    from sklearn.preprocessing import MultiLabelBinarizer

    from jobtitles.inference import TitleClassifier
    from jobtitles.metrics import multilabel_metrics

    ref = TitleClassifier(model_dir, backend="torch", batch_size=128)
    other = TitleClassifier(model_dir, backend=backend, batch_size=128)
    p_ref, p_other = ref.decide(ref.predict_scores(titles)), other.decide(other.predict_scores(titles))
    mlb = MultiLabelBinarizer(classes=ref.labels)
    y = mlb.fit_transform([[g for g in gs if g in ref.labels] for gs in gold])
    return {"agreement": float(np.mean((p_ref == p_other).all(axis=1))),
            "micro_f1_torch": multilabel_metrics(y, p_ref)["micro_f1"],
            "micro_f1_onnx": multilabel_metrics(y, p_other)["micro_f1"]}


@cli_entry
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(prog="python -m jobtitles.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--onnx", action="store_true", help="(default) write onnx/model.onnx")
    p.add_argument("--int8", action="store_true", help="also write onnx/model_int8.onnx (dynamic quantization)")
    p.add_argument("--titles", type=Path, help="CSV with titles and labels for the parity check")
    p.add_argument("--no_parity", action="store_true")
    args = p.parse_args(argv)
    for path in export_onnx(args.model, args.int8):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if args.no_parity:
        return 0
    titles, gold = parity_rows(args.model, args.titles)
    failed = False
    for backend in ["onnx"] + (["onnx-int8"] if args.int8 else []):
        r = parity(args.model, backend, titles, gold)
        drop = r["micro_f1_torch"] - r["micro_f1_onnx"]
        ok = r["agreement"] >= MIN_AGREEMENT and drop <= MAX_F1_DROP
        failed |= not ok
        print(f"parity {backend} vs torch on {len(titles)} titles: label sets agree on {r['agreement']:.2%} "
              f"(need >= {MIN_AGREEMENT:.1%}); micro-F1 torch {r['micro_f1_torch']:.4f}, {backend} "
              f"{r['micro_f1_onnx']:.4f} (drop {drop:+.4f}, allowed {MAX_F1_DROP}) -> {'OK' if ok else 'FAILED'}")
    if failed:
        print(f"error: parity check failed; use --backend torch or the fp32 export", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
