"""Export a trained model folder to ONNX (fp32, and static int8 with --int8) and check parity with PyTorch.

    python -m jobtitles.export --model outputs/base/model --int8

The parity check runs on the training titles the folder carries (parity_rows.csv, so a copied folder checks
itself), or --titles FILE.csv with labels: label-set agreement with PyTorch and micro-F1 against the gold labels.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from jobtitles.core.errors import UserError, cli_entry
from jobtitles.core.io_utils import atomic_path, disk_errors, remove_temporaries, sha256_file, write_json
from jobtitles.core.log import setup_logging
from jobtitles.core.model_folder import MAX_PARITY_ROWS_BYTES, ONNX_FILES, PARITY_FILE, PARITY_ROWS, parity_sample
from jobtitles.core.labels import split_labels

OPSET = 17
MIN_AGREEMENT = 0.995
MAX_F1_DROP = 0.005
MAX_CALIBRATION = 2_000  # titles whose activation ranges static int8 takes (MinMax converges long before)
PARITY_FAILED = "parity check failed; use --backend torch or the fp32 export"


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


def export_onnx(model_dir: Path, int8: bool, calibration: Sequence[dict] | None = None) -> list[Path]:
    """onnx/model.onnx, and model_int8.onnx when `int8` (static with the `calibration` feeds, else dynamic)."""
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
        _write_onnx(model, sample, fp32, int8_path if int8 else None, calibration)
    except BaseException:
        remove_temporaries(out_dir)  # the quantizer's own `<input>-inferred` copy sits beside ours
        raise
    return [fp32, int8_path] if int8 else [fp32]


def _write_onnx(model, sample, fp32: Path, int8_path: Path | None, calibration: Sequence[dict] | None) -> None:
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

            quantize(tmp, int8_path, calibration=calibration)  # from the new fp32 file, before it replaces the old


def parity_rows(model_dir: Path, titles_file: Path | None) -> tuple[list[str], list[list[str]]]:
    """The titles (with gold labels) the export is checked on: --titles, else the folder's own parity_rows.csv
    (written by training), else the run's oof_predictions.csv beside a folder trained before it existed."""
    from jobtitles.core.data import load_titles

    if titles_file is not None:
        titles, _, gold = load_titles(titles_file)
        if gold is None:
            raise UserError(f"{titles_file}: parity needs label columns ('Column 1', ...) beside the titles")
        return titles, gold
    for path in (model_dir / PARITY_ROWS, model_dir.parent / "oof_predictions.csv"):
        if path.is_file():
            return _read_parity_file(path)
    raise UserError(f"{model_dir / PARITY_ROWS} not found (a model folder trained by an earlier version, away from "
                    f"its run); pass --titles FILE.csv (titles with labels) for the parity check")


def _read_parity_file(path: Path) -> tuple[list[str], list[list[str]]]:
    """Titles and gold label sets of parity_rows.csv or oof_predictions.csv (at most MAX_PARITY_ROWS: a seeded
    sample of a larger run's rows)."""
    from jobtitles.core.spreadsheet import read_rows

    size = path.stat().st_size
    if path.name == PARITY_ROWS and size > MAX_PARITY_ROWS_BYTES:  # a folder from someone else: bounded first
        raise UserError(f"{path}: {size:,} bytes, expected at most {MAX_PARITY_ROWS_BYTES:,}; pass --titles "
                        f"FILE.csv (titles with labels) for the parity check")
    try:
        rows = read_rows(path, ("title", "gold"))  # as trained on: "=1+1" is scored as "=1+1", not "'=1+1"
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: not a CSV this project wrote ({err}); pass --titles FILE.csv") from None
    if not rows or any(r.get("title") is None or r.get("gold") is None for r in rows):
        raise UserError(f"{path}: expected a header 'title;gold' and at least one row; pass --titles FILE.csv")
    rows = [rows[i] for i in parity_sample(len(rows), seed=0)]
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

    def compare(self, backend: str, held_out: bool = False) -> dict[str, float | None]:
        """Agreement and micro-F1 from one prediction pass; with `held_out`, also the agreement on the odd rows
        (neither calibrated on nor a fallback chosen on)."""
        from jobtitles.core.metrics import multilabel_metrics

        pred = self.predictions(backend)
        same = (pred == self.reference).all(axis=1)
        return {"agreement": float(np.mean(same)), "held_out": float(np.mean(same[1::2])) if held_out else None,
                "micro_f1_torch": multilabel_metrics(self.y, self.reference)["micro_f1"],
                "micro_f1_onnx": multilabel_metrics(self.y, pred)["micro_f1"]}


@dataclass(frozen=True)
class ParityCheck:
    """One backend against PyTorch on the parity rows."""

    backend: str
    n: int
    agreement: float  # share of rows whose label set equals PyTorch's
    micro_f1_torch: float
    micro_f1_onnx: float
    held_out: float | None = None  # agreement on the odd rows: not calibrated on, nor a fallback chosen on

    @property
    def ok(self) -> bool:
        judged = self.agreement if self.held_out is None else self.held_out
        return min(judged, self.agreement) >= MIN_AGREEMENT and self.micro_f1_torch - self.micro_f1_onnx <= MAX_F1_DROP

    def line(self) -> str:
        drop = self.micro_f1_torch - self.micro_f1_onnx
        held = "" if self.held_out is None else f" ({self.held_out:.2%} on the half not calibrated or chosen on)"
        return (f"parity {self.backend} vs torch on {self.n} titles: label sets agree on {self.agreement:.2%}{held} "
                f"(need >= {MIN_AGREEMENT:.1%}); micro-F1 torch {self.micro_f1_torch:.4f}, {self.backend} "
                f"{self.micro_f1_onnx:.4f} (drop {drop:+.4f}, allowed {MAX_F1_DROP}) -> {'OK' if self.ok else 'FAILED'}")


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how its parity checks went (none when it ran without them)."""

    written: tuple[Path, ...]
    checks: tuple[ParityCheck, ...] = ()

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


def _checked(check: Parity, backend: str, name: str | None = None, held_out: bool = False) -> ParityCheck:
    return ParityCheck(name or backend, len(check.titles), **check.compare(backend, held_out))


def calibration_feeds(model_dir: Path, titles: list[str]) -> list[dict]:
    """Static int8's calibration: every other parity title (at most MAX_CALIBRATION), tokenized and padded in
    batches as TitleClassifier runs them; the other half checks the result on titles it was not calibrated on."""
    from jobtitles.predict.inference import TitleClassifier

    clf = TitleClassifier(model_dir, backend="torch", batch_size=64)
    return list(clf.model_feeds(titles[0::2][:MAX_CALIBRATION], ("input_ids", "attention_mask")))


def int8_with_fallback(model_dir: Path, check: Parity, say: Callable[[str], None],
                       calibration: Sequence[dict] | None = None) -> ParityCheck:
    from jobtitles.predict.quantize import accuracy_aware

    onnx_dir = model_dir / "onnx"
    first = _checked(check, "onnx-int8", held_out=calibration is not None)
    say(first.line())
    if first.ok:
        return first
    say("int8: below target; keeping the most sensitive encoder layers in fp32 (chosen on even rows, "
        "checked on odd rows)")
    kept, steps = accuracy_aware(onnx_dir / "model.onnx", onnx_dir / "model_int8.onnx",
                                 lambda: check.same_rows("onnx-int8"), MIN_AGREEMENT, min_fp32_groups=1,
                                 calibration=calibration)
    path = onnx_dir / "model_int8.onnx"
    say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {', '.join(kept)} in fp32)")
    final = _checked(check, "onnx-int8", f"onnx-int8 ({', '.join(kept)} fp32)", held_out=True)
    say(final.line())
    return final


def export_model(model_dir: Path, int8: bool, titles_file: Path | None = None, parity: bool = True,
                 fallback: bool = True, say: Callable[[str], None] = print, static: bool = True) -> ExportReport:
    """Export (fp32, and int8 when asked: static, calibrated on half the parity rows, unless `static` is
    false), then check each file against PyTorch on the parity rows; `say` gets every progress line (the CLI
    prints them, serve logs them). A UserError when the folder or the parity rows are unusable; the report says
    whether the checks passed."""
    rows = parity_rows(model_dir, titles_file) if parity or (int8 and static) else None
    calibration = calibration_feeds(model_dir, rows[0]) if int8 and static else None
    written = tuple(export_onnx(model_dir, int8, calibration))
    for path in written:
        say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if not parity:
        return ExportReport(written)
    check = Parity(model_dir, *rows)
    checks = [_checked(check, "onnx")]
    say(checks[0].line())
    if int8:
        if fallback:
            checks.append(int8_with_fallback(model_dir, check, say, calibration))
        else:
            checks.append(_checked(check, "onnx-int8", held_out=static))
            say(checks[-1].line())
    write_parity_record(model_dir, checks, int8, "static" if static else "dynamic")
    return ExportReport(written, tuple(checks))


def write_parity_record(model_dir: Path, checks: list[ParityCheck], int8: bool, quantization: str) -> None:
    """onnx/parity.json: each file's check and SHA-256, so predict.py and Spark pick a passed int8 export by
    default (model_folder.passed_parity) and a file replaced since is not trusted."""
    keys = ["onnx", "onnx-int8"][:len(checks)] if int8 else ["onnx"]
    record = {"checks": {key: {**dataclasses.asdict(c), "ok": c.ok} for key, c in zip(keys, checks)},
              "sha256": {ONNX_FILES[key]: sha256_file(model_dir / ONNX_FILES[key]) for key in keys}}
    if int8:
        record["int8_quantization"] = quantization
    write_json(model_dir / PARITY_FILE, record)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(prog="python -m jobtitles.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--onnx", action="store_true", help="(default) write onnx/model.onnx")
    p.add_argument("--int8", action="store_true",
                   help="also write onnx/model_int8.onnx (static: a title's scores do not depend on its batch)")
    p.add_argument("--dynamic", action="store_true",
                   help="int8 with activation ranges per batch (a title's scores then depend on its batch-mates)")
    p.add_argument("--titles", type=Path, help="CSV with titles and labels for the parity check")
    p.add_argument("--no_parity", action="store_true")
    p.add_argument("--no_fallback", action="store_true",
                   help="int8 below the parity target: fail instead of keeping sensitive layers in fp32")
    args = p.parse_args(argv)
    report = export_model(args.model, args.int8, args.titles, parity=not args.no_parity,
                          fallback=not args.no_fallback, static=not args.dynamic)
    if not report.passed:
        print(f"error: {PARITY_FAILED}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
