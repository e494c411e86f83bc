"""The real train.py -> model folder -> pipeline -> predict.py path on a tiny random DistilBERT."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jobtitles.cli import predict_main
from jobtitles.core.io_utils import read_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tiny_run_dir) -> Path:
    return tiny_run_dir


def test_run_folder_contents(run_dir):
    for name in ("cv_results.json", "oof_predictions.csv", "report.md", "folds.json", "run_info.json",
                 "dropped_rows.csv", "model/config.json", "model/model.safetensors", "model/README.md",
                 "model/tokenizer.json", "plots/per_label_f1.png", "plots/training_loss.png"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.rglob("checkpoint-*")), "CV must not write checkpoints"
    info = read_json(run_dir / "run_info.json")
    assert len(info["fingerprint"]["csv_sha256"]) == 64 and "transformers" in info["versions"]
    from jobtitles.train.training import resolve_precision

    used = resolve_precision("auto")  # base.yaml's precision on this machine
    assert info["precision"]["name"] == used.name == read_json(run_dir / "cv_results.json")["precision"]["name"]
    assert f"Trained in {used.name} with the bce loss" in (run_dir / "model" / "README.md").read_text()


def test_saved_config_has_sorted_labels_problem_type_and_thresholds(run_dir):
    cfg = read_json(run_dir / "model" / "config.json")
    labels = ["Chief Officer", "Director", "Individual Contributor/Staff", "Manager", "Not Required", "Owner",
              "Vice President"]
    assert [cfg["id2label"][str(i)] for i in range(len(labels))] == labels
    assert cfg["label2id"] == {lab: i for i, lab in enumerate(labels)}
    assert cfg["problem_type"] == "multi_label_classification"
    assert set(cfg["decision_thresholds"]) == set(labels)
    assert cfg["decision_thresholds"] == read_json(run_dir / "cv_results.json")["thresholds"]


def test_training_changed_the_parameters(run_dir, tiny_model_dir):
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(run_dir / "model" / "model.safetensors")
    key = "distilbert.transformer.layer.0.attention.q_lin.weight"
    assert not torch.equal(before[key], after[key])


def test_cv_results_are_consistent(run_dir, tiny_csv):
    res = read_json(run_dir / "cv_results.json")
    assert res["n_splits"] == 2 and len(res["folds"]) == 2
    assert res["n_rows"] == sum(f["n_test"] for f in res["folds"]) == 85
    for variant in ("model", "model_tuned", "model_shrunk", "baseline", "model_train"):
        for metric in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"):
            key = {"model": "test", "model_tuned": "test_tuned", "model_shrunk": "test_shrunk", "model_train": "train"}
            values = [f[key.get(variant, variant)][metric]
                      for f in res["folds"]]
            assert res["summary"][variant][metric]["mean"] == pytest.approx(np.mean(values))
            assert res["summary"][variant][metric]["std"] == pytest.approx(np.std(values, ddof=1))
    folds = read_json(run_dir / "folds.json")
    assert sorted(r for f in folds for r in f["test_rows"]) == list(range(2, 87))
    # "Not Required" has 1 row: one of the 2 test folds lacks it, and the report must say which
    test_fold = next(k for k, f in enumerate(folds) if 86 in f["test_rows"])  # row 86: "Board Member", no label
    assert res["missing_labels"]["Not Required"] == [1 - test_fold]
    assert f"**Not Required**: no positive row in test fold(s) {2 - test_fold}" in (run_dir / "report.md").read_text()
    # the baseline learns these separable titles; the tiny model must beat a constant guess of the most frequent
    # label on its training splits (predicting Manager, 18 of 88 label cells, for every row: micro-F1 0.21)
    assert res["summary"]["baseline"]["micro_f1"]["mean"] > 0.6
    assert res["summary"]["model_train"]["micro_f1"]["mean"] > 0.45


def test_oof_file_matches_cv_results(run_dir):
    res = read_json(run_dir / "cv_results.json")
    with open(run_dir / "oof_predictions.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert len(rows) == res["n_rows"]
    correct = np.mean([int(r["correct"]) for r in rows])
    fold_key = {"model": "test", "model_tuned": "test_tuned", "model_shrunk": "test_shrunk"}[res["decision_rule"]["variant"]]
    per_fold = [f[fold_key]["subset_accuracy"] * f["n_test"] for f in res["folds"]]
    assert correct == pytest.approx(sum(per_fold) / res["n_rows"])
    assert {k for k in rows[0] if k.startswith("score:")} == {f"score:{lab}" for lab in res["labels"]}


def test_report_numbers_equal_cv_results(run_dir):
    res = read_json(run_dir / "cv_results.json")
    report = (run_dir / "report.md").read_text()
    row = re.search(r"^\| micro_f1 \| (.+) \|$", report, re.M).group(1).split(" | ")
    expected = [res["summary"][v]["micro_f1"] for v in ("model", "model_tuned", "model_shrunk", "baseline", "model_train")]
    assert row == [f"{e['mean']:.4f} ± {e['std']:.4f}" for e in expected]
    for lab in res["labels"]:
        assert f"| {lab} | {res['label_support'][lab]} |" in report
    for path in res["plots"].values():
        assert f"]({path})" in report and (run_dir / path).is_file()


def test_model_card_metadata_and_numbers(run_dir):
    from huggingface_hub import ModelCard

    card = ModelCard.load(run_dir / "model" / "README.md")
    res = read_json(run_dir / "cv_results.json")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "text-classification"
    assert "multi-label-classification" in card.data.tags
    micro = [r for r in card.data.eval_results if r.metric_name.startswith("CV micro-F1")][0]
    assert micro.metric_value == round(res["summary"][res["decision_rule"]["variant"]]["micro_f1"]["mean"], 4)
    assert 'pipeline("text-classification"' in card.text and "top_k=None" in card.text
    assert "TF-IDF" in card.text


def test_final_model_fit_check_is_recomputable_and_reported(run_dir, tiny_csv):
    """The final model is scored on its own rows with the saved rule; report and card carry that figure."""
    import numpy as np
    from huggingface_hub import ModelCard
    from sklearn.preprocessing import MultiLabelBinarizer

    from jobtitles.core.data import load_labeled_csv
    from jobtitles.predict.inference import TitleClassifier
    from jobtitles.core.metrics import multilabel_metrics

    res = read_json(run_dir / "cv_results.json")
    check = res["final_fit_check"]
    data = load_labeled_csv(tiny_csv)
    clf = TitleClassifier(run_dir / "model")
    pred = clf.decide(clf.predict_scores(data.titles))
    y = MultiLabelBinarizer(classes=clf.labels).fit_transform(
        [[data.labels[j] for j in np.flatnonzero(row)] for row in data.y])
    assert abs(multilabel_metrics(y, pred)["micro_f1"] - check["train_rows"]["micro_f1"]) < 1e-6
    assert check["ok"] == (check["train_rows"]["micro_f1"] >= check["expected_min_micro_f1"])
    line = f"micro-F1 {check['train_rows']['micro_f1']:.4f}"
    assert line in (run_dir / "report.md").read_text()
    assert line in ModelCard.load(run_dir / "model" / "README.md").text


def test_fit_check_flags_a_model_that_fits_its_rows_worse_than_cv(run_dir, caplog):
    from dataclasses import replace

    import numpy as np

    from jobtitles.core.data import LabeledData
    from jobtitles.train.final import fit_check
    from jobtitles.selection.run_result import RunResult

    y = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    data = LabeledData(titles=list("abcd"), label_sets=[["A"], ["B"], ["A"], ["B"]], rows=[2, 3, 4, 5],
                       labels=["A", "B"], y=y)
    real = RunResult.from_json(read_json(run_dir / "cv_results.json"))
    result = replace(real, labels=["A", "B"], thresholds={"A": 0.5, "B": 0.5}, score_sources=None,
                     label_groups_used=False, summary={"model": {"micro_f1": {"mean": 0.9, "std": 0.01}}},
                     decision=replace(real.decision, exclusive_label=None, at_least_one=True))

    good = fit_check(y * 0.9 + 0.05, data, result)
    assert good.ok and good.train_rows["micro_f1"] == 1.0
    bad = fit_check(np.tile([0.6, 0.4], (4, 1)), data, result)  # always "A"
    assert not bad.ok and bad.train_rows["micro_f1"] == 0.5
    assert abs(bad.expected_min_micro_f1 - 0.88) < 1e-9
    assert "rerun with another seed" in caplog.text


def test_pipeline_returns_sigmoid_scores_with_label_names(run_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    clf = pipeline("text-classification", model=str(run_dir / "model"), top_k=None)
    out = clf(["VP of Sales", "Senior Software Engineer"])
    labels = read_json(run_dir / "cv_results.json")["labels"]
    assert len(out) == 2 and sorted(d["label"] for d in out[0]) == labels
    assert sum(d["score"] for d in out[0]) != pytest.approx(1.0, abs=1e-3)  # independent sigmoids, not softmax
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    with torch.no_grad():
        expected = torch.sigmoid(model(**tok(["VP of Sales"], return_tensors="pt")).logits)[0]
    got = {d["label"]: d["score"] for d in out[0]}
    assert [got[lab] for lab in labels] == pytest.approx(expected.tolist(), abs=1e-5)


def test_the_training_max_length_is_every_backend_s_default(run_dir):
    """The run trained on titles cut to max_length (16 in the tests): the folder says so in the tokenizer's own
    model_max_length, so TitleClassifier and pipeline(truncation=True) cut a long title at the same token."""
    from transformers import pipeline

    from jobtitles import TitleClassifier

    assert read_json(run_dir / "model" / "tokenizer_config.json")["model_max_length"] == 16
    clf = TitleClassifier(run_dir / "model")
    assert clf.max_length == 16
    long_title = "Senior Vice President of Global Sales Operations and Business Development for Europe, the Middle East and Africa"
    scores, cut = clf.score_titles([long_title, "CEO"])
    assert cut == [True, False]
    plain = pipeline("text-classification", model=str(run_dir / "model"), top_k=None, function_to_apply="sigmoid")
    got = {d["label"]: d["score"] for d in plain([long_title], truncation=True)[0]}
    # the labels TitleClassifier scores with the transformer alone (others may take the TF-IDF baseline's score)
    own = [j for j, src in enumerate(clf.scoring.sources or ["transformer"] * len(clf.labels)) if src == "transformer"]
    assert own and not clf.scoring.softmax_groups
    assert [got[clf.labels[j]] for j in own] == pytest.approx([scores[0][j] for j in own], abs=1e-5)


def test_title_classifier_applies_saved_thresholds(run_dir):
    from jobtitles import TitleClassifier

    clf = TitleClassifier(run_dir / "model", batch_size=3)
    titles = ["VP of Sales", "CEO", "Software Engineer", "Director of Finance", "x"]
    scores = clf.predict_scores(titles)
    # batching/sorting must not change scores
    single = np.vstack([clf.predict_scores(t) for t in titles])
    assert np.allclose(scores, single, atol=1e-5)
    thr = np.array([clf.thresholds[j] for j in range(len(clf.labels))])
    for title, s, labels in zip(titles, scores, clf.predict(titles)):
        passing = [clf.labels[j] for j in np.flatnonzero(s >= thr)]
        assert labels == (passing or [clf.labels[int(np.argmax(s))]])
    assert isinstance(clf.predict("CEO"), list) and isinstance(clf.predict("CEO")[0], str)


def test_predict_cli_titles_and_checked_csv(run_dir, tiny_csv, tmp_path, capsys):
    model = str(run_dir / "model")
    assert predict_main(["--model", model, "VP of Sales", "Senior Software Engineer"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split("\t")[0] for l in lines] == ["VP of Sales", "Senior Software Engineer"]
    out = tmp_path / "pred.jsonl"
    assert predict_main(["--model", model, "--input", str(tiny_csv), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == 85 and records[0]["row"] == 2
    wrong = sum(set(r["labels"]) != set(g) for r, g in zip(records, gold_sets(tiny_csv)))
    assert f"{wrong} of 85 predictions differ from the file's labels" in err
    out_csv = tmp_path / "pred.csv"
    assert predict_main(["--model", model, "--input", str(tiny_csv), "--output", str(out_csv), "--chunk_size", "10"]) == 0
    with open(out_csv) as fh:
        assert len(list(csv.DictReader(fh, delimiter=";"))) == 85


def gold_sets(path: Path) -> list[list[str]]:
    with open(path) as fh:
        return [[v for k, v in r.items() if k != "Title" and v] for r in csv.DictReader(fh, delimiter=";")]


def test_predict_script_errors_are_one_line(run_dir, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases = [
        (["--model", str(tmp_path), "VP"], r"not a saved model"),
        (["--model", str(run_dir / "model"), "--input", str(empty)], r"empty\.csv: the file is empty"),
        (["--model", str(run_dir / "model"), "--output", "x.parquet", "VP"], r"expected a \.csv or \.jsonl"),
    ]
    for argv, pattern in cases:
        proc = subprocess.run([sys.executable, str(ROOT / "predict.py"), *argv], capture_output=True, text=True,
                              cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert re.search(rf"^error: .*{pattern}", proc.stderr, re.M), proc.stderr


def test_predict_rejects_mixed_thresholds(run_dir, tmp_path):
    import shutil

    from jobtitles import TitleClassifier
    from jobtitles.core.errors import UserError

    bad = tmp_path / "model"
    shutil.copytree(run_dir / "model", bad)
    cfg = read_json(bad / "config.json")
    cfg["decision_thresholds"] = {"Other": 0.5}
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"thresholds are for labels \['Other'\] but the model has"):
        TitleClassifier(bad)


def test_onnx_export_matches_torch(run_dir, tmp_path, capsys):
    import shutil

    from jobtitles import TitleClassifier
    from jobtitles.predict.export import Parity, main as export_main, parity_rows
    from jobtitles.predict.predict_cli import main as predict_cli

    model = tmp_path / "run" / "model"
    shutil.copytree(run_dir / "model", model)
    shutil.copy(run_dir / "oof_predictions.csv", model.parent / "oof_predictions.csv")
    assert export_main(["--model", str(model), "--int8", "--no_parity"]) == 0
    assert (model / "onnx" / "model.onnx").is_file() and (model / "onnx" / "model_int8.onnx").is_file()
    titles = ["VP of Sales", "CEO", "Senior Director of Global Corporate Communications", "x"]
    ref = TitleClassifier(model).predict_scores(titles)
    assert np.allclose(TitleClassifier(model, backend="onnx").predict_scores(titles), ref, atol=1e-4)
    assert np.abs(TitleClassifier(model, backend="onnx-int8").predict_scores(titles) - ref).max() < 0.05
    titles_cv, gold = parity_rows(model, None)
    r = Parity(model, titles_cv, gold).compare("onnx")
    assert r["agreement"] == 1.0 and r["micro_f1_onnx"] == pytest.approx(r["micro_f1_torch"])
    capsys.readouterr()  # drop the export's messages
    assert predict_cli(["--model", str(model), "--backend", "onnx-int8", "CEO"]) == 0
    assert capsys.readouterr().out.startswith("CEO\t")


def test_export_reports_its_parity_checks_and_serve_uses_the_same_report(run_dir, tmp_path, monkeypatch, capsys):
    """export_model returns what it checked (the CLI prints the same lines and exits by it); serve's first-use
    export calls the same function and serves int8 only when its report passed."""
    import shutil

    from jobtitles.predict import export
    from jobtitles.serve.backend import choose_backend

    model = tmp_path / "run" / "model"
    shutil.copytree(run_dir / "model", model)
    shutil.copy(run_dir / "oof_predictions.csv", model.parent / "oof_predictions.csv")
    said: list[str] = []
    report = export.export_model(model, int8=True, say=said.append)
    n = len(export.parity_rows(model, None)[0])
    assert [c.backend.split(" ")[0] for c in report.checks] == ["onnx", "onnx-int8"]
    assert all(c.n == n for c in report.checks) and report.checks[0].agreement == 1.0 and report.checks[0].ok
    assert report.passed == all(c.ok for c in report.checks)
    assert [line for line in said if line.startswith("parity")][-2:] == [c.line() for c in report.checks]
    capsys.readouterr()
    assert export.main(["--model", str(model), "--int8"]) == (0 if report.passed else 1)
    assert [c.line() for c in report.checks][0] in capsys.readouterr().out
    # serve: a failed check falls back (the int8 file removed), a passed one serves int8
    for passed in (False, True):
        checks = (export.ParityCheck("onnx-int8", n, 1.0 if passed else 0.5, 0.9, 0.9),)
        monkeypatch.setattr(export, "export_model", lambda *a, **k: export.ExportReport((), checks))
        (model / "onnx" / "model_int8.onnx").unlink(missing_ok=True)
        choice = choose_backend(model, None)
        assert (choice.backend, choice.reason) == (("onnx-int8", "exported on first use; parity check passed")
                                                   if passed else ("torch", "int8 export failed its parity check "
                                                                   f"({export.PARITY_FAILED}); serving PyTorch"))


def test_int8_fallback_keeps_the_layer_that_restores_agreement(run_dir, tmp_path):
    """Greedy fallback with real quantization: an agreement function that only passes when layer 1 stays fp32."""
    import shutil

    import onnx

    from jobtitles.predict.export import export_onnx
    from jobtitles.predict.quantize import accuracy_aware, node_groups

    model = tmp_path / "model"
    shutil.copytree(run_dir / "model", model)
    fp32 = export_onnx(model, int8=False)[0]
    groups = node_groups(fp32)
    assert {"layer 0", "layer 1", "head"} <= set(groups)  # tiny DistilBERT: 2 layers + pre_classifier/classifier
    out = model / "onnx" / "model_int8.onnx"

    def same_rows():  # 1 of 10 rows differs unless layer 1's MatMuls are still plain (fp32) in the current file
        plain = {n.name for n in onnx.load(str(out)).graph.node if n.op_type == "MatMul"}
        return np.arange(10) != (99 if set(groups["layer 1"]) <= plain else 3)

    kept, steps = accuracy_aware(fp32, out, same_rows, target=0.995, log=lambda _: None)
    assert kept == ["layer 1"]
    assert [s[2] for s in steps] == [0.8, 1.0]  # row 3 is a check (odd) row
    assert set(groups["layer 1"]) <= {n.name for n in onnx.load(str(out)).graph.node if n.op_type == "MatMul"}
    # a model that meets the target at once is quantized fully
    kept_none, steps_none = accuracy_aware(fp32, out, lambda: np.ones(10, bool), target=0.995)
    assert kept_none == [] and len(steps_none) == 1


def test_model_without_thresholds_warns_and_uses_half(run_dir, tmp_path, caplog):
    import logging
    import shutil

    from jobtitles import TitleClassifier

    plain = tmp_path / "model"
    shutil.copytree(run_dir / "model", plain)
    cfg = read_json(plain / "config.json")
    del cfg["decision_thresholds"]
    (plain / "config.json").write_text(json.dumps(cfg))
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        clf = TitleClassifier(plain)
    assert "config.json has no decision_thresholds; using 0.5 for every label" in caplog.text
    assert clf.thresholds.tolist() == [0.5] * len(clf.labels)


def test_run_result_is_one_typed_object_and_cv_results_is_its_json(run_dir):
    from jobtitles.selection.run_result import FitCheck, RunResult

    saved = read_json(run_dir / "cv_results.json")
    result = RunResult.from_json(saved)
    assert isinstance(result.final_fit_check, FitCheck) and result.complete
    assert result.to_json() == saved  # nothing added or lost on the way back
    assert "oof_scores" not in saved and not any(k.startswith("_") for k in saved)
    assert result.summary[result.shipped_variant] == saved["summary"][saved["decision_rule"]["variant"]]


def test_card_lists_the_settings_that_differ_from_the_defaults(run_dir):
    text = (run_dir / "model" / "README.md").read_text()
    for row in ("| learning_rate | 0.005 |", "| per_device_train_batch_size | 16 |", "| num_train_epochs | 4.0 |",
                "| max_length | 16 |", "| n_splits | 2 |", "| min_train_steps | 80 |", "| weight_decay | 0.01 |"):
        assert row in text, row
    for hidden in ("| adam_beta1 ", "| head_init ", "| output_dir ", "| hub_token ", "| train_file ", "| seed ",
                   "| model_name_or_path "):
        assert hidden not in text, hidden  # defaults, paths of the training machine and secrets stay out


def test_title_classifier_bf16_on_request(run_dir):
    from jobtitles import TitleClassifier
    from jobtitles.core.errors import UserError

    titles = ["VP of Sales", "Chief Executive Officer", "Software Engineer", "Owner"]
    fp32 = TitleClassifier(run_dir / "model")
    bf16 = TitleClassifier(run_dir / "model", dtype="bfloat16")
    assert fp32.torch_model.dtype == torch.float32 and bf16.torch_model.dtype == torch.bfloat16
    a, b = fp32.predict_scores(titles), bf16.predict_scores(titles)
    assert np.abs(a - b).max() < 0.05 and not np.array_equal(a, b)  # bf16 arithmetic, close to fp32
    with pytest.raises(UserError, match="dtype must be float32 or bfloat16"):
        TitleClassifier(run_dir / "model", dtype="float16")


def test_random_head_end_to_end(tiny_csv, tiny_model_dir, tmp_path):
    """head_init: random (the architecture's head, no linear probe) trains, decides and saves like the default."""
    from conftest import tiny_train_argv
    from jobtitles import TitleClassifier
    from jobtitles.cli import train_main

    out = tmp_path / "random_head"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out, "--head_init", "random", "--label_issues",
                                      "false")) == 0
    res = read_json(out / "cv_results.json")
    assert res["head_init"] == "random" and res["complete"]
    assert "head initialised by random" in (out / "report.md").read_text()
    labels = TitleClassifier(out / "model").predict(["VP of Sales", "CEO"])
    assert all(labels) and all(set(ls) <= set(res["labels"]) for ls in labels)


def test_a_copied_model_folder_exports_int8_and_checks_it_on_its_own_rows(run_dir, tmp_path, monkeypatch):
    """parity_rows.csv travels with the folder (the run's training titles and labels, as in
    oof_predictions.csv), so an export away from the run checks int8 against PyTorch by itself; a folder without
    it, or with an oversized one, is one line naming the file and --titles."""
    import shutil

    from jobtitles.core.errors import UserError
    from jobtitles.core.labels import split_labels
    from jobtitles.core.spreadsheet import read_rows
    from jobtitles.predict import export

    model = tmp_path / "elsewhere" / "model"
    shutil.copytree(run_dir / "model", model)
    oof = read_rows(run_dir / "oof_predictions.csv", ("title", "gold"))
    titles, gold = export.parity_rows(model, None)
    assert (titles, gold) == ([r["title"] for r in oof], [split_labels(r["gold"]) for r in oof])
    report = export.export_model(model, int8=True, say=lambda line: None)
    assert [c.n for c in report.checks] == [len(oof), len(oof)] and report.checks[0].agreement == 1.0
    record = read_json(model / "onnx" / "parity.json")
    assert set(record["checks"]) == {"onnx", "onnx-int8"} and record["checks"]["onnx"]["n"] == len(oof)
    monkeypatch.setattr(export, "MAX_PARITY_ROWS_BYTES", 100)
    with pytest.raises(UserError, match=r"parity_rows\.csv: [\d,]+ bytes, expected at most 100; pass --titles"):
        export.parity_rows(model, None)
    (model / "parity_rows.csv").unlink()
    with pytest.raises(UserError, match=r"parity_rows\.csv not found .*pass --titles"):
        export.parity_rows(model, None)


def test_parity_rows_are_a_seeded_sample_of_a_large_run(tmp_path, monkeypatch):
    from jobtitles.core.data import LabeledData
    from jobtitles.core.model_folder import PARITY_ROWS
    from jobtitles.core.spreadsheet import read_rows
    from jobtitles.train import model_save
    import jobtitles.core.model_folder as model_folder

    monkeypatch.setattr(model_folder, "MAX_PARITY_ROWS", 7)
    titles = [f"=Title {i}" for i in range(20)]  # a formula-like title comes back as trained on
    y = np.eye(2, dtype=np.float32)[[i % 2 for i in range(20)]]
    data = LabeledData(titles, [], list(range(2, 22)), ["A", "B"], y)
    assert model_save.write_parity_rows(tmp_path, data, seed=3) == 7
    rows = read_rows(tmp_path / PARITY_ROWS, ("title", "gold"))
    picked = [int(r["title"].split()[1]) for r in rows]
    assert len(picked) == 7 and picked == sorted(set(picked)) and picked != list(range(7))
    assert all(r["gold"] == "AB"[i % 2] for r, i in zip(rows, picked))
    assert (tmp_path / PARITY_ROWS).read_text().splitlines()[1].startswith("'=Title")


def test_static_int8_scores_do_not_depend_on_batch_mates(run_dir, tmp_path):
    """The default int8 export (static, calibrated on half the folder's parity rows) scores a title the same
    alone and inside two different batches, so predict.py's chunks, Spark's partitions and serve's batches agree;
    the dynamic export, on the same folder and titles, does not (which is what the test would see if the default
    went back to it)."""
    import shutil

    from jobtitles.predict import export
    from jobtitles.predict.inference import TitleClassifier

    scores = {}
    for static in (True, False):
        model = tmp_path / str(static) / "model"
        shutil.copytree(run_dir / "model", model)
        report = export.export_model(model, int8=True, say=lambda line: None, static=static, fallback=False)
        assert read_json(model / "onnx" / "parity.json")["int8_quantization"] == ("static" if static else "dynamic")
        assert report.checks[1].held_out is not None if static else report.checks[1].held_out is None
        titles = export.parity_rows(model, None)[0][:10]
        clf = TitleClassifier(model, backend="onnx-int8", batch_size=4)
        alone = np.vstack([clf.predict_scores([t]) for t in titles])
        together = clf.predict_scores(titles)
        mates = ["Chief Executive Officer, Founder and Chairman of the Board (EMEA, APAC)", "VP", "x"]
        beside_others = clf.predict_scores(mates + titles)[len(mates):]
        scores[static] = max(np.abs(alone - together).max(), np.abs(alone - beside_others).max())
    assert scores[True] <= 1e-6 < scores[False], scores
