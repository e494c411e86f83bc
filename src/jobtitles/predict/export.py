"""Export a trained model folder to ONNX (fp32, and dynamic int8 with --int8) and check parity with PyTorch.

    python -m jobtitles.export --model outputs/base/model --int8

The parity check runs on the run's cross-validation rows (oof_predictions.csv beside the model folder, or
--titles FILE.csv with labels): label-set agreement with PyTorch and micro-F1 against the gold labels.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from jobtitles.core.errors import UserError, cli_entry
from jobtitles.core.io_utils import atomic_path, disk_errors, remove_temporaries
from jobtitles.core.log import setup_logging
from jobtitles.core.labels import split_labels

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
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from jobtitles.predict.inference import TitleClassifier
    from jobtitles.core.model_folder import read_model_config

    read_model_config(model_dir)
    out_dir = model_dir / "onnx"
    with disk_errors(out_dir):
        out_dir.mkdir(exist_ok=True)
    remove_temporaries(out_dir)  # left by an export killed mid-write (kill -9, power loss)
    TitleClassifier(model_dir)  # every check a prediction makes, before anything is written
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), use_safetensors=True,
                                                               trust_remote_code=False).eval()
    sample = tokenizer(["VP of Sales", "Senior Director, Corporate Communications (EMEA)"], padding=True,
                       return_tensors="pt")
    fp32, int8_path = out_dir / "model.onnx", out_dir / "model_int8.onnx"
    try:
        _write_onnx(model, sample, fp32, int8_path if int8 else None)
    except BaseException:
        remove_temporaries(out_dir)  # the quantizer's own `<input>-inferred` copy sits beside ours
        raise
    return [fp32, int8_path] if int8 else [fp32]


def _write_onnx(model, sample, fp32: Path, int8_path: Path | None) -> None:
    """Both files are written in full before either replaces the earlier export: a full disk or a kill leaves
    the earlier pair as it was, never a new fp32 beside an int8 of older weights."""
    import torch

    with atomic_path(fp32) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer's and exporter's notes (TracerWarning, deprecations) concern torch internals, not the user
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Logits(model), (sample["input_ids"], sample["attention_mask"]), str(tmp),
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                              "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}},
                opset_version=OPSET, dynamo=False,  # TorchScript exporter: dynamic axes without onnxscript
            )
        if int8_path is not None:
            from jobtitles.predict.quantize import quantize

            quantize(tmp, int8_path)  # from the new fp32 file, just before it replaces the old one


def parity_rows(model_dir: Path, titles_file: Path | None) -> tuple[list[str], list[list[str]]]:
    from jobtitles.core.data import load_titles

    if titles_file is not None:
        titles, _, gold = load_titles(titles_file)
        if gold is None:
            raise UserError(f"{titles_file}: parity needs label columns ('Column 1', ...) beside the titles")
        return titles, gold
    oof = model_dir.parent / "oof_predictions.csv"
    if not oof.is_file():
        raise UserError(f"{oof} not found; pass --titles FILE.csv (titles with labels) for the parity check")
    from jobtitles.core.spreadsheet import read_rows

    rows = read_rows(oof, ("title", "gold"))  # the titles as trained on: "=1+1" is scored as "=1+1", not "'=1+1"
    return [r["title"] for r in rows], [split_labels(r["gold"]) for r in rows]


class Parity:
    """Label sets and micro-F1 of an ONNX backend against PyTorch (computed once) on the parity rows."""

    def __init__(self, model_dir: Path, titles: list[str], gold: list[list[str]]) -> None:
        from sklearn.preprocessing import MultiLabelBinarizer

        from jobtitles.predict.inference import TitleClassifier

        self.model_dir, self.titles = model_dir, titles
        ref = TitleClassifier(model_dir, backend="torch", batch_size=128)
        self.reference = ref.decide(ref.predict_scores(titles))
        mlb = MultiLabelBinarizer(classes=ref.labels)
        self.y = mlb.fit_transform([[g for g in gs if g in ref.labels] for gs in gold])

    def predictions(self, backend: str) -> np.ndarray:
        from jobtitles.predict.inference import TitleClassifier

        clf = TitleClassifier(self.model_dir, backend=backend, batch_size=128)  # reads the file as it is now
        return clf.decide(clf.predict_scores(self.titles))

    def same_rows(self, backend: str) -> np.ndarray:
        """Per row: does `backend` give the reference's label set? Always all rows in the same batches: dynamic
        int8 scales activations per batch, so a title's scores depend on its batch-mates."""
        return (self.predictions(backend) == self.reference).all(axis=1)

    def compare(self, backend: str) -> dict[str, float]:
        from jobtitles.core.metrics import multilabel_metrics

        pred = self.predictions(backend)
        return {"agreement": float(np.mean((pred == self.reference).all(axis=1))),
                "micro_f1_torch": multilabel_metrics(self.y, self.reference)["micro_f1"],
                "micro_f1_onnx": multilabel_metrics(self.y, pred)["micro_f1"]}


def verdict(backend: str, n: int, r: dict[str, float], agreement: float | None = None) -> bool:
    """Print the parity line; `agreement` overrides the all-rows figure (held-out half after a fallback)."""
    drop = r["micro_f1_torch"] - r["micro_f1_onnx"]
    judged = r["agreement"] if agreement is None else agreement
    ok = min(judged, r["agreement"]) >= MIN_AGREEMENT and drop <= MAX_F1_DROP
    held = "" if agreement is None else f" ({agreement:.2%} on the half the fallback was not chosen on)"
    print(f"parity {backend} vs torch on {n} titles: label sets agree on {r['agreement']:.2%}{held} "
          f"(need >= {MIN_AGREEMENT:.1%}); micro-F1 torch {r['micro_f1_torch']:.4f}, {backend} "
          f"{r['micro_f1_onnx']:.4f} (drop {drop:+.4f}, allowed {MAX_F1_DROP}) -> {'OK' if ok else 'FAILED'}")
    return ok


def int8_with_fallback(model_dir: Path, check: Parity) -> bool:
    from jobtitles.predict.quantize import accuracy_aware

    onnx_dir = model_dir / "onnx"
    n = len(check.titles)
    if verdict("onnx-int8", n, check.compare("onnx-int8")):
        return True
    print("int8: below target; keeping the most sensitive encoder layers in fp32 (chosen on even rows, "
          "checked on odd rows)")
    kept, steps = accuracy_aware(onnx_dir / "model.onnx", onnx_dir / "model_int8.onnx",
                                 lambda: check.same_rows("onnx-int8"), MIN_AGREEMENT, min_fp32_groups=1)
    path = onnx_dir / "model_int8.onnx"
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {', '.join(kept)} in fp32)")
    return verdict(f"onnx-int8 ({', '.join(kept)} fp32)", n, check.compare("onnx-int8"), agreement=steps[-1][2])


@cli_entry
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(prog="python -m jobtitles.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--onnx", action="store_true", help="(default) write onnx/model.onnx")
    p.add_argument("--int8", action="store_true", help="also write onnx/model_int8.onnx (dynamic quantization)")
    p.add_argument("--titles", type=Path, help="CSV with titles and labels for the parity check")
    p.add_argument("--no_parity", action="store_true")
    p.add_argument("--no_fallback", action="store_true",
                   help="int8 below the parity target: fail instead of keeping sensitive layers in fp32")
    args = p.parse_args(argv)
    for path in export_onnx(args.model, args.int8):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if args.no_parity:
        return 0
    titles, gold = parity_rows(args.model, args.titles)
    check = Parity(args.model, titles, gold)
    failed = not verdict("onnx", len(titles), check.compare("onnx"))
    if args.int8:
        failed |= not (int8_with_fallback(args.model, check) if not args.no_fallback
                       else verdict("onnx-int8", len(titles), check.compare("onnx-int8")))
    if failed:
        print("error: parity check failed; use --backend torch or the fp32 export", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
