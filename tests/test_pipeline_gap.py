"""When some labels are scored outside the transformer, a plain transformers pipeline user gets another model than
the one measured: the run says which labels and how often the label sets agree, in the card's first lines, the
console summary, config.json (read by the Hub push and serve's /info) and the page."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest

from jobtitles.core.io_utils import read_json
from jobtitles.selection.run_result import RunResult


@pytest.fixture(scope="module")
def result(tiny_run_dir) -> RunResult:
    return RunResult.from_json(read_json(tiny_run_dir / "cv_results.json"))


def test_agreement_is_the_shipped_rule_on_both_score_sets(result):
    from jobtitles.selection.cv_summary import pipeline_gap

    n, k = 6, len(result.labels)
    shipped = np.full((n, k), 0.01)
    shipped[:, 0] = 0.9  # every row: the first label
    transformer = shipped.copy()
    transformer[:2, 0], transformer[:2, 1] = 0.2, 0.95  # two rows: another label from the transformer alone
    r = dataclasses.replace(result, oof_scores=shipped, thresholds={lab: 0.5 for lab in result.labels})
    gap = pipeline_gap(r, transformer)
    assert gap.agreement == pytest.approx(4 / 6) and gap.n_rows == 6 and gap.sources == result.shipped_sources()
    first, second = result.labels[:2]
    # the first label: 6 rows from the shipped scores, 4 of them from the transformer alone; the second: 2 rows
    # from the transformer, none from the shipped scores; the others: given to no row by either
    assert gap.label_jaccard == {lab: (4 / 6 if lab == first else 0.0 if lab == second else 1.0)
                                 for lab in result.labels}
    assert pipeline_gap(dataclasses.replace(r, score_sources=None), transformer) is None
    from jobtitles.train.final import training_gap

    trained = training_gap(dataclasses.replace(r, pipeline_gap=gap), shipped, shipped)
    assert trained.train_agreement == 1.0 and set(trained.train_label_jaccard.values()) == {1.0}
    assert (trained.agreement, trained.label_jaccard) == (gap.agreement, gap.label_jaccard)  # out-of-fold kept
    assert training_gap(dataclasses.replace(r, pipeline_gap=None), transformer, shipped) is None


def test_training_agreement_is_pipeline_against_title_classifier(tiny_run_dir, result):
    """The run's figure on the final model's training titles is what a plain pipeline user and TitleClassifier
    get from the saved folder, title by title (the shipped rule applied to the pipeline's scores)."""
    import csv

    from transformers import pipeline

    from jobtitles import TitleClassifier
    from jobtitles.core.metrics import label_agreement

    model_dir = tiny_run_dir / "model"
    with (model_dir / "parity_rows.csv").open(encoding="utf-8", newline="") as f:
        titles = [row["title"] for row in csv.DictReader(f, delimiter=";")]
    assert len(titles) == result.n_rows  # the tiny run's training titles, every one
    clf = TitleClassifier(model_dir, backend="torch")
    shipped = clf.decide(clf.predict_scores(titles))
    pipe = pipeline("text-classification", model=str(model_dir), top_k=None, device="cpu")
    col = {lab: j for j, lab in enumerate(result.labels)}
    plain = np.zeros_like(shipped, dtype=np.float64)
    for i, answer in enumerate(pipe(titles, batch_size=64, truncation=True)):
        for item in answer:
            plain[i, col[item["label"]]] = item["score"]
    same, jaccard = label_agreement(clf.decide(plain), shipped, result.labels)
    gap = result.pipeline_gap
    # the tiny random model's scores sit near its thresholds: padding in other batches may flip one title
    assert gap.train_agreement == pytest.approx(same, abs=1 / len(titles) + 1e-9) and same < 1.0
    assert gap.train_label_jaccard == pytest.approx(jaccard, abs=0.1)
    assert f"and on {same:.1%} of the final model's training titles" in gap.line()


def test_the_run_says_it_everywhere(tiny_run_dir, result, capsys):
    gap = result.pipeline_gap
    assert result.shipped_sources(), "the tiny run scores some labels with its TF-IDF baseline"
    assert gap is not None and gap.sources == result.shipped_sources() and gap.n_rows == result.n_rows
    assert 0.0 <= gap.agreement <= 1.0
    line = gap.line()
    named = ", ".join(f"{lab} ({src})" for lab, src in gap.sources.items())
    worst = sorted((min(gap.label_jaccard[lab], gap.train_label_jaccard[lab]), lab) for lab in result.labels)
    lowest = ", ".join(f"{lab} {v:.2f}" for v, lab in worst if v < 1.0)
    assert lowest, "the tiny random model's label sets differ for some label"
    assert line == (f"a plain transformers pipeline answers differently for {named}: it shows the transformer's "
                    f"sigmoid per label, while those labels are scored by another source or a softmax within their "
                    f"group; label sets agree on {gap.agreement:.1%} of the {gap.n_rows} "
                    f"out-of-fold titles and on {gap.train_agreement:.1%} of the final model's training titles; "
                    f"labels whose titles differ most (Jaccard of the titles each gives the label, the lower of "
                    f"out-of-fold and training): {lowest}")
    cfg = json.loads((tiny_run_dir / "model" / "config.json").read_text())
    assert cfg["jobtitles_pipeline_gap"] == dataclasses.asdict(gap)
    card = (tiny_run_dir / "model" / "README.md").read_text()
    body = card.split("\n---\n", 1)[1]
    title_at = body.index("\n# ")
    first = body[title_at:title_at + 900]
    assert "> **A plain transformers pipeline answers differently for" in first and f"{gap.agreement:.1%}" in first
    from jobtitles.reporting.run_files import print_summary

    print_summary(result, tiny_run_dir)
    assert f"note: {line} (TitleClassifier" in capsys.readouterr().out


def test_push_warns_first_and_serve_info_says_it(tiny_run_dir, result, monkeypatch, caplog):
    from fastapi.testclient import TestClient

    import huggingface_hub
    from jobtitles.serve.app import create_app
    from jobtitles.serve.settings import ServeSettings
    from jobtitles.train import hub

    events = []

    class FakeApi:  # no network: what the push would do, in order
        def __init__(self, token=None):
            pass

        def create_repo(self, *a, **k):
            events.append("create_repo")

        def upload_folder(self, *a, **k):
            events.append("upload_folder")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    caplog.set_level(logging.WARNING, logger="jobtitles")
    monkeypatch.setattr(hub, "warn", lambda message: events.append(message))
    training = type("T", (), {"push_to_hub": True, "hub_model_id": "me/titles", "hub_token": None,
                              "hub_private_repo": False})()
    hub.push(tiny_run_dir / "model", training)
    assert events[0].startswith("pushing ") and result.pipeline_gap.line() in events[0]
    assert events[1:] == ["create_repo", "upload_folder"]
    settings = ServeSettings(model_dir=tiny_run_dir / "model", backend="torch", workers=1, model_check_s=0)
    with TestClient(create_app(settings)) as client:
        info = client.get("/info").json()
    assert info["pipeline_gap"] == result.pipeline_gap.line()


@pytest.mark.parametrize("gap", [
    {"sources": {"Owner": "baseline"}, "agreement": 10 ** 400, "n_rows": 5},
    {"sources": {"Owner": "baseline"}, "agreement": 0.9, "n_rows": float("inf")},
    {"sources": {"Owner": "baseline"}, "agreement": 0.9, "n_rows": 5, "train_agreement": 10 ** 400},
    {"sources": {"Owner": "baseline"}, "agreement": 0.9, "n_rows": 5, "label_jaccard": {"Owner": 10 ** 400}},
    {"sources": {"Owner": "baseline"}, "agreement": 0.9, "n_rows": 5, "label_jaccard": ["Owner"]},
    {"sources": ["Owner"], "agreement": 0.9, "n_rows": 5},
    "everything",
])
def test_a_hostile_gap_record_is_ignored_not_raised(gap):
    """config.json of a folder from someone else: a record that is not what train.py writes gives no sentence or
    only the part that is well formed, never an exception (TitleClassifier, serve and Spark read it on load)."""
    from jobtitles.core.model_folder import PIPELINE_GAP_KEY, pipeline_gap_line

    line = pipeline_gap_line({PIPELINE_GAP_KEY: gap})
    assert line is None or (line.startswith("a plain transformers pipeline answers differently for Owner (baseline)")
                            and "training titles" not in line and "differ most" not in line)
