"""group_loss: softmax: cross-entropy within exclusive label groups, BCE for the rest, and group scores that sum
to one in every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_train_argv, write_csv
from jobtitles.core.activations import scores_from_logits
from jobtitles.core.io_utils import read_json
from jobtitles.train.losses import group_softmax_loss

GROUPS = [(np.array([0, 1, 2]), True), (np.array([3, 4]), False)]  # label 5 is outside groups


def test_group_loss_is_cross_entropy_within_groups_and_bce_outside():
    logits = torch.tensor([[2.0, -1.0, 0.5, 1.0, -2.0, 0.3], [0.1, 0.2, 3.0, -1.0, -1.5, -0.7]])
    labels = torch.tensor([[1.0, 0, 0, 0, 1, 1], [0, 0, 1, 0, 0, 0]])  # row 1: no label of the at-most-one group
    loss = group_softmax_loss(GROUPS, 6)({"logits": logits}, labels)
    ce1 = F.cross_entropy(logits[:, :3], torch.tensor([0, 2]), reduction="sum")
    with_none = torch.cat([logits[:, 3:5], torch.zeros(2, 1)], dim=1)
    ce2 = F.cross_entropy(with_none, torch.tensor([1, 2]), reduction="sum")  # class 2 = none of them
    bce = F.binary_cross_entropy_with_logits(logits[:, 5], labels[:, 5], reduction="sum")
    assert torch.isclose(loss, (ce1 + ce2 + bce) / (2 * 3))
    weighted = group_softmax_loss(GROUPS, 6, np.array([9, 9, 9, 9, 9, 4.0], dtype=np.float32))
    bce_w = F.binary_cross_entropy_with_logits(logits[:, 5], labels[:, 5], pos_weight=torch.tensor(4.0),
                                               reduction="sum")
    assert torch.isclose(weighted({"logits": logits}, labels), (ce1 + ce2 + bce_w) / 6)


def test_group_scores_are_a_softmax_and_other_labels_a_sigmoid():
    logits = np.array([[2.0, -1.0, 0.5, 1.0, -2.0, 0.3], [0.1, 0.2, 3.0, -5.0, -6.0, -0.7]])
    scores = scores_from_logits(logits, GROUPS)
    assert np.allclose(scores[:, :3].sum(axis=1), 1.0)
    expected = np.exp(logits[:, 3:5]) / (np.exp(logits[:, 3:5]).sum(axis=1, keepdims=True) + 1.0)
    assert np.allclose(scores[:, 3:5], expected) and (scores[:, 3:5].sum(axis=1) < 1).all()
    assert np.allclose(scores[:, 5], 1 / (1 + np.exp(-logits[:, 5])))
    assert np.allclose(scores_from_logits(logits, None), 1 / (1 + np.exp(-logits)))


LEVELS = {"Manager": ["Manager", "Mgr", "Team Lead"], "Director": ["Director", "Head", "Dir."],
          "VP": ["VP", "Vice President", "SVP"]}
AREAS = {"IT": ["Engineering", "Software", "IT", "Infrastructure"], "Sales": ["Sales", "Account", "Revenue", "Business Development"]}
# every (level, area) pair in several wordings: distinct titles (the loader drops exact duplicates)
LEVEL_AREA = [(f"{lw} {aw}" if i % 2 else f"{aw} {lw}", [level, area])
              for level, lws in LEVELS.items() for area, aws in AREAS.items()
              for i, (lw, aw) in enumerate((lw, aw) for lw in lws for aw in aws)]


@pytest.fixture(scope="module")
def softmax_run(tiny_model_dir, tmp_path_factory):
    from jobtitles.cli import train_main

    tmp = tmp_path_factory.mktemp("group_loss")
    csv = write_csv(tmp / "level_area.csv", LEVEL_AREA, n_cols=2)
    out = tmp / "run"
    assert train_main(tiny_train_argv(csv, tiny_model_dir, out, "--group_loss", "softmax", "--label_issues",
                                      "false")) == 0
    return out


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_softmax_run_saves_its_groups_and_every_backend_scores_them_so(softmax_run, backend):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from jobtitles import TitleClassifier
    from jobtitles.predict.export import export_onnx

    res = read_json(softmax_run / "cv_results.json")
    assert res["group_loss"] == "softmax"
    model_dir = softmax_run / "model"
    cfg = read_json(model_dir / "config.json")
    assert [g["labels"] for g in cfg["score_softmax_groups"]] == [["Director", "Manager", "VP"], ["IT", "Sales"]]
    if backend == "onnx" and not (model_dir / "onnx" / "model.onnx").is_file():
        export_onnx(model_dir, int8=False)
    clf = TitleClassifier(model_dir, backend=backend)
    titles = ["IT Manager", "VP of Sales", "Sales Director EMEA", "x"]
    scores = clf.predict_scores(titles)
    for name in ("Column 1", "Column 2"):
        cols = [clf.labels.index(lab) for g in cfg["score_softmax_groups"] if g["name"] == name for lab in g["labels"]]
        assert np.allclose(scores[:, cols].sum(axis=1), 1.0, atol=1e-5)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(**tok(titles, padding=True, return_tensors="pt")).logits.numpy()
    assert np.allclose(scores, clf.scoring.transformer_scores(logits), atol=1e-4)
    # the run learned from its titles: six label sets in equal shares, so a constant guess gets 1/6 of them
    assert res["summary"]["model"]["subset_accuracy"]["mean"] > 0.3


def test_softmax_run_reports_what_a_plain_pipeline_shows(softmax_run):
    """A plain pipeline shows a sigmoid per logit, not the groups' softmax: the run names those labels and
    measures the label sets' agreement from the fold models' own logits, out of fold and on training titles."""
    from jobtitles.core.decision_rule import DecisionRule
    from scipy.special import logit
    from jobtitles.core.model_folder import PIPELINE_GAP_KEY, pipeline_gap_line

    res = read_json(softmax_run / "cv_results.json")
    cfg = read_json(softmax_run / "model" / "config.json")
    labels = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
    groups = [(np.array([labels.index(lab) for lab in g["labels"]]), g["kind"] == "exactly_one")
              for g in cfg["score_softmax_groups"]]
    gap = res["pipeline_gap"]
    assert gap["sources"] == {lab: "softmax" for lab in labels if lab in {"Director", "Manager", "VP", "IT", "Sales"}}
    rule = DecisionRule.from_config(cfg, labels, "config.json")
    same = n = 0
    for k in range(res["n_splits"]):
        fold_dir = softmax_run / "folds" / f"fold_{k}"
        shipped, plain = np.load(fold_dir / "test_scores.npy"), np.load(fold_dir / "plain_scores.npy")
        # the plain scores are the sigmoids of the logits the shipped softmax scores come from
        assert np.allclose(scores_from_logits(logit(plain), groups), shipped, atol=1e-6)
        same += int((rule.decide(plain) == rule.decide(shipped)).all(axis=1).sum())
        n += len(plain)
    assert gap["n_rows"] == n and gap["agreement"] == pytest.approx(same / n)
    assert 0.0 <= gap["train_agreement"] <= 1.0 and set(gap["train_label_jaccard"]) == set(labels)
    assert cfg[PIPELINE_GAP_KEY] == gap
    assert "Manager (softmax)" in pipeline_gap_line(cfg)
