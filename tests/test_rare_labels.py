"""Rare labels and the empty label: per-label score sources, the exclusive empty label in every backend, and
shipped thresholds equal to the evaluated ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import make_rule, sample_rows, tiny_train_argv, write_csv
from jobtitles.core.io_utils import read_json
from jobtitles.core.scoring import combine
from jobtitles.selection.score_sources import choose_sources


def test_a_label_only_the_baseline_learns_is_sent_to_the_baseline():
    rng = np.random.default_rng(0)
    n = 200
    y = np.zeros((n, 3), dtype=int)
    y[np.arange(n) % 3 == 0, 0] = 1
    y[np.arange(n) % 3 != 0, 1] = 1
    y[::25, 2] = 1  # a rare label: 8 rows
    transformer = np.where(y == 1, 0.9, 0.1) + rng.normal(0, 0.02, y.shape)
    transformer[:, 2] = 0.05  # never learned by the transformer
    baseline = np.where(y == 1, 0.7, 0.2) + rng.normal(0, 0.02, y.shape)
    baseline[:, :2] = 0.4  # the baseline is useless on the frequent labels
    folds = [(np.setdiff1d(np.arange(n), np.arange(k, n, 4)), np.arange(k, n, 4)) for k in range(4)]
    choice = choose_sources(transformer, baseline, y, folds, make_rule(["a", "b", "rare"]))
    assert choice.adopted and choice.sources == ["transformer", "transformer", "baseline"]
    assert np.mean(choice.fold_macro_f1["per_label"]) > np.mean(choice.fold_macro_f1["transformer"])
    assert np.allclose(choice.scores[:, 2], baseline[:, 2]) and np.allclose(choice.scores[:, :2], transformer[:, :2])


def test_each_label_leaves_the_transformer_on_its_own_gain_not_as_a_package():
    """Two rare labels the transformer never learns: the baseline is right on every fold for one, and right on
    one fold of four for the other (a mean gain, but within its noise). Only the first leaves the transformer."""
    n = 200
    y = np.zeros((n, 4), dtype=int)
    y[np.arange(n) % 2 == 0, 0] = 1
    y[np.arange(n) % 2 == 1, 1] = 1
    y[np.arange(0, n, 19)[:10], 2] = 1  # 10 rows each, spread over the four folds
    y[np.arange(2, n, 21)[:10], 3] = 1
    transformer = np.where(y == 1, 0.9, 0.1)
    transformer[:, 2:] = 0.05
    baseline = np.full(y.shape, 0.4)
    baseline[:, 2] = np.where(y[:, 2] == 1, 0.8, 0.1)
    folds = [(np.setdiff1d(np.arange(n), np.arange(k, n, 4)), np.arange(k, n, 4)) for k in range(4)]
    baseline[:, 3] = 0.1
    lucky = folds[3][1]  # rows of the fourth fold only
    baseline[lucky, 3] = np.where(y[lucky, 3] == 1, 0.8, 0.1)
    choice = choose_sources(transformer, baseline, y, folds, make_rule(["a", "b", "steady", "lucky"]))
    assert choice.adopted and choice.sources == ["transformer", "transformer", "baseline", "transformer"]
    assert "steady" in choice.reason and "lucky" not in choice.reason


def test_a_baseline_that_does_not_help_is_not_adopted():
    rng = np.random.default_rng(1)
    y = (rng.random((120, 2)) < 0.4).astype(int)
    transformer = np.where(y == 1, 0.9, 0.1)
    baseline = rng.random(y.shape)  # noise
    folds = [(np.setdiff1d(np.arange(120), np.arange(k, 120, 3)), np.arange(k, 120, 3)) for k in range(3)]
    choice = choose_sources(transformer, baseline, y, folds, make_rule(["a", "b"]))
    assert not choice.adopted and choice.sources == ["transformer", "transformer"]
    assert np.array_equal(choice.scores, transformer)


def test_score_sources_transformer_measures_the_per_label_rule_and_ships_the_transformer():
    """The default: the per-label rule is computed and reported with its figures, but every label keeps the
    transformer, so a plain pipeline gives the shipped labels."""
    rng = np.random.default_rng(0)
    n = 200
    y = np.zeros((n, 3), dtype=int)
    y[np.arange(n) % 3 == 0, 0] = 1
    y[np.arange(n) % 3 != 0, 1] = 1
    y[::25, 2] = 1
    transformer = np.where(y == 1, 0.9, 0.1) + rng.normal(0, 0.02, y.shape)
    transformer[:, 2] = 0.05
    baseline = np.where(y == 1, 0.7, 0.2) + rng.normal(0, 0.02, y.shape)
    folds = [(np.setdiff1d(np.arange(n), np.arange(k, n, 4)), np.arange(k, n, 4)) for k in range(4)]
    auto = choose_sources(transformer, baseline, y, folds, make_rule(["a", "b", "rare"]))
    assert auto.adopted and auto.sources[2] == "baseline"
    kept = auto.declined(transformer)
    assert not kept.adopted and kept.sources == ["transformer"] * 3 and np.array_equal(kept.scores, transformer)
    assert kept.reason.startswith("score_sources: transformer keeps every label") and kept.reason.endswith(auto.reason)
    assert kept.fold_macro_f1 == auto.fold_macro_f1  # the figures of what auto would do stay in the report
    assert kept.not_applied and not auto.not_applied
    from jobtitles.reporting.report import sources_verdict
    from jobtitles.selection.cv_summary import sources_summary

    verdicts = [sources_verdict(sources_summary(c, ["a", "b", "rare"])) for c in (auto, kept)]
    assert verdicts == ["Adopted", "Measured, not applied"]
    assert auto.declined(transformer).declined(transformer) == kept
    off = choose_sources(transformer[:, :2], transformer[:, :2], y[:, :2], folds, make_rule(["a", "b"]))
    assert off.declined(transformer[:, :2]) is off  # nothing adopted: nothing to decline
    assert sources_verdict(sources_summary(off, ["a", "b"])) == "Not adopted"


def test_the_default_run_ships_the_transformer_alone(tiny_csv, tiny_model_dir, tmp_path):
    from jobtitles.cli import train_main

    out = tmp_path / "run"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out, "--score_sources", "transformer",
                                      "--pos_weight", "sqrt_inverse_frequency")) == 0
    res = read_json(out / "cv_results.json")
    assert res["decision"]["pos_weight"] == "sqrt_inverse_frequency"
    assert res["score_sources"]["adopted"] is False and set(res["score_sources"]["sources"].values()) == {"transformer"}
    assert res["pipeline_gap"] is None and not (out / "model" / "baseline.skops").exists()
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert "jobtitles_pipeline_gap" not in cfg and set(cfg.get("decision_score_sources", {}).values()) <= {"transformer"}


@pytest.fixture(scope="module")
def rare_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A run on data with a 4-row label and 10 rows without a label (the classic data's proportions)."""
    from jobtitles.cli import train_main

    rows = [r for r in sample_rows() if "Owner" not in r[1] and r[1]]
    rows += [("Owner", ["Owner"]), ("Business Owner", ["Owner"]), ("Owner and Founder", ["Owner"]),
             ("CEO & Owner", ["Chief Officer", "Owner"])]
    rows += [(t, []) for t in ("Board Member", "Volunteer", "Student", "Retired", "Trustee", "Advisor", "Intern",
                               "Freelancer", "Consultant", "Self-employed")]
    folder = tmp_path_factory.mktemp("rare")
    csv = write_csv(folder / "rare.csv", rows)
    out = folder / "run"
    assert train_main(tiny_train_argv(csv, tiny_model_dir, out, "--n_splits", "2")) == 0
    return out


def test_shipped_thresholds_are_the_evaluated_rule(rare_run):
    from jobtitles.selection.decisions import choose_rule

    res = read_json(rare_run / "cv_results.json")
    cfg = read_json(rare_run / "model" / "config.json")
    labels = res["labels"]
    assert cfg["decision_thresholds"] == res["thresholds"]
    assert cfg["decision_exclusive_label"] == "Not Required"
    with open(rare_run / "oof_predictions.csv", encoding="utf-8") as fh:
        import csv

        oof_rows = list(csv.DictReader(fh, delimiter=";"))
    scores = np.array([[float(r[f"score:{lab}"]) for lab in labels] for r in oof_rows])
    folds = read_json(rare_run / "folds.json")
    row_index = {int(r["row"]): i for i, r in enumerate(oof_rows)}
    fold_idx = [(np.array(sorted(row_index[r] for r in f["train_rows"])), np.array(sorted(row_index[r] for r in f["test_rows"])))
                for f in folds]
    y = np.array([[1 if lab in r["gold"].split(" | ") else 0 for lab in labels] for r in oof_rows])
    rule = choose_rule(scores, y, fold_idx, make_rule(labels, 0.5, True, labels.index("Not Required")), (), 3)
    assert rule.chosen == res["decision_rule"]["chosen"]
    assert np.allclose(rule.rule.thresholds, [res["thresholds"][lab] for lab in labels], atol=1e-6)
    # Owner (4 rows, 2 per fold's tuning rows < tune_min_support=3) was never tuned inside a fold: not shipped tuned
    assert res["thresholds"]["Owner"] == 0.5


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_empty_label_is_exclusive_in_every_backend(rare_run, tmp_path, backend):
    from jobtitles import TitleClassifier
    from jobtitles.predict.export import export_onnx

    model = tmp_path / "model"
    shutil.copytree(rare_run / "model", model)
    cfg = read_json(model / "config.json")
    cfg["decision_thresholds"] = {lab: 0.01 for lab in cfg["decision_thresholds"]}  # every label passes
    (model / "config.json").write_text(json.dumps(cfg))
    if backend != "torch":
        export_onnx(model, int8=backend == "onnx-int8")
    clf = TitleClassifier(model, backend=backend)
    titles = ["CEO & Owner", "Board Member", "VP of Sales", "Owner", "Trustee", "Intern", "Director / Manager"]
    scores = clf.predict_scores(titles)
    pred = clf.predict(titles)
    nr = clf.labels.index("Not Required")
    assert any("Not Required" in p for p in pred) and any("Not Required" not in p for p in pred)
    for row, labels in zip(scores, pred):
        passing = [lab for j, lab in enumerate(clf.labels) if lab != "Not Required" and row[j] >= 0.01]
        assert len(passing) >= 2  # without the rule, Not Required would stand beside these
        if row[nr] >= max(row[clf.labels.index(lab)] for lab in passing):
            assert labels == ["Not Required"]
        else:
            assert labels == passing


def test_baseline_sourced_labels_are_applied_by_title_classifier(rare_run, tmp_path):
    from jobtitles import TitleClassifier
    from jobtitles.core.baseline import make_baseline
    from jobtitles.core.data import load_labeled_csv
    from jobtitles.core.baseline_store import BASELINE_FILE, save_baseline

    model = tmp_path / "model"
    shutil.copytree(rare_run / "model", model)
    (model / BASELINE_FILE).unlink(missing_ok=True)
    data = load_labeled_csv(rare_run.parent / "rare.csv")
    base = make_baseline(0).fit(np.asarray(data.titles, dtype=object), data.y.astype(int))
    save_baseline(base, model)
    cfg = read_json(model / "config.json")
    cfg["decision_score_sources"] = {}  # transformer only
    (model / "config.json").write_text(json.dumps(cfg))
    plain = TitleClassifier(model).predict_scores(["Owner", "VP of Sales"])
    cfg["decision_score_sources"] = {"Owner": "baseline", "Manager": "blend"}
    (model / "config.json").write_text(json.dumps(cfg))
    clf = TitleClassifier(model)
    got = clf.predict_scores(["Owner", "VP of Sales"])
    expected_base = base.predict_proba(np.asarray(["Owner", "VP of Sales"], dtype=object))
    o, m = clf.labels.index("Owner"), clf.labels.index("Manager")
    assert np.allclose(got[:, o], expected_base[:, o], atol=1e-6)
    assert np.allclose(got[:, m], (plain[:, m] + expected_base[:, m]) / 2, atol=1e-6)
    rest = [j for j in range(len(clf.labels)) if j not in (o, m)]
    assert np.allclose(got[:, rest], plain[:, rest], atol=1e-6)
    assert combine(plain, expected_base, ["transformer"] * len(clf.labels)).tolist() == plain.tolist()


def test_gold_check_counts_rows_without_labels_as_the_empty_label(rare_run, tmp_path, capsys):
    from jobtitles import TitleClassifier
    from jobtitles.cli import predict_main

    csv_path = tmp_path / "check.csv"
    csv_path.write_text("Title;Column 1\nBoard Member;\nVP of Sales;Vice President\n")
    clf = TitleClassifier(rare_run / "model")
    pred = clf.predict(["Board Member", "VP of Sales"])
    wrong = int(pred[0] != ["Not Required"]) + int(pred[1] != ["Vice President"])
    assert predict_main(["--model", str(rare_run / "model"), "--input", str(csv_path)]) == 0
    assert f"{wrong} of 2 predictions differ from the file's labels" in capsys.readouterr().err


def test_a_baseline_that_only_fits_some_folds_is_not_adopted():
    # rare label r: the transformer never learns it; the baseline is right on fold A's rows and wrong on fold
    # B's (its positives low, 4 negatives high). On all rows the baseline "wins" r (F1 0.5 vs 0), but fold B,
    # scored with the choice made on fold A, loses micro-F1 and subset accuracy: the rule must not be adopted.
    n = 40
    y = np.zeros((n, 3), dtype=int)
    y[:, 0] = np.arange(n) % 2
    y[:, 1] = 1 - y[:, 0]
    y[[0, 2, 4, 6, 20, 22, 24, 26], 2] = 1
    transformer = np.where(y == 1, 0.9, 0.1)
    transformer[:, 2] = 0.05
    baseline = np.full(y.shape, 0.4)
    baseline[:20, 2] = np.where(y[:20, 2] == 1, 0.9, 0.1)
    baseline[20:, 2] = 0.1
    baseline[[21, 23, 25, 27], 2] = 0.9
    folds = [(np.arange(20, 40), np.arange(20)), (np.arange(20), np.arange(20, 40))]
    choice = choose_sources(transformer, baseline, y, folds, make_rule(["a", "b", "r"]))
    assert choice.fold_sources == [["transformer"] * 3, ["transformer", "transformer", "baseline"]]
    assert not choice.adopted and choice.sources == ["transformer"] * 3
