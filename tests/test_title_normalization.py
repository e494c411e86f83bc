"""Title normalisation (`title_normalization: abbreviations`) lives in the saved tokenizer, so training and every
prediction path see the same text: "SVP Marketing" and "Senior Vice President Marketing" are one model input for
TitleClassifier (torch and int8), a plain transformers pipeline, predict.py's de-duplication, serve and Spark,
while titles the rules must not touch stay apart."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from jobtitles.core.title_normalization import RULES, normalized_text

# (abbreviated, written out): pairs that must be one model input once normalised
PAIRS = [("SVP Marketing", "senior vice president marketing"), ("Sr. Dir. Sales", "Senior Director Sales"),
         ("VP, HR", "vice president, hr"), ("CEO & Founder", "Chief Executive Officer & Founder"),
         ("Referent/in Marketing (m/w/d)", "Referent Marketing"), ("Mgr Operations (Full-time)", "Manager Operations")]
# titles that look like a rule but are not one
APART = ["Directory Services Lead", "CEOs Forum Host", "Sales/Inside Lead", "Manager/In-house Counsel", "VPN Engineer",
         "Srinivasan Partner", "Referentin Vertrieb"]


@pytest.fixture(scope="module")
def saved_tokenizer(normalized_run_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(normalized_run_dir / "model"))


def test_every_rule_changes_its_example_and_leaves_look_alikes(saved_tokenizer):
    for rule in RULES:
        assert normalized_text(saved_tokenizer, rule.example) != rule.example.lower(), rule
    for short, long in PAIRS:
        assert saved_tokenizer(short)["input_ids"] == saved_tokenizer(long)["input_ids"], (short, long)
    for title in APART:
        assert normalized_text(saved_tokenizer, title) == title.lower(), title
    assert normalized_text(saved_tokenizer, "SVP, Sr. Mgr") == "senior vice president, senior manager"


def test_training_tokenizes_as_the_saved_folder_and_records_it(normalized_run_dir, tiny_model_dir, tiny_csv,
                                                                saved_tokenizer):
    """What the fold and final models trained on (the run's tokenizer) is what the folder gives every path."""
    from jobtitles.core.io_utils import read_json
    from jobtitles.train.training import load_tokenizer

    trained = load_tokenizer(str(tiny_model_dir), "abbreviations")
    titles = [line.split(";")[0] for line in tiny_csv.read_text(encoding="utf-8").splitlines()[1:]] + \
        [t for pair in PAIRS for t in pair] + APART
    assert trained(titles)["input_ids"] == saved_tokenizer(titles)["input_ids"]
    assert load_tokenizer(str(tiny_model_dir))("SVP Marketing")["input_ids"] != trained("SVP Marketing")["input_ids"]
    cfg = read_json(normalized_run_dir / "model" / "config.json")
    assert cfg["title_normalization"] == "abbreviations"
    assert "normalises titles" in (normalized_run_dir / "model" / "README.md").read_text(encoding="utf-8")


def _pair_scores(clf) -> np.ndarray:
    return clf.predict_scores([t for pair in PAIRS for t in pair]).reshape(len(PAIRS), 2, -1)


def test_every_backend_and_a_plain_pipeline_see_one_input(normalized_run_dir, tiny_run_dir, tmp_path):
    from transformers import pipeline

    from jobtitles import TitleClassifier
    from jobtitles.predict.export import export_model

    model = tmp_path / "model"
    shutil.copytree(normalized_run_dir / "model", model)
    export_model(model, int8=True, parity=False, say=lambda line: None)
    torch_clf = TitleClassifier(model)
    for clf in (torch_clf, TitleClassifier(model, backend="onnx-int8")):
        pair = _pair_scores(clf)
        assert np.array_equal(pair[:, 0], pair[:, 1]), clf.backend
    clf = TitleClassifier(model, batch_size=4)
    clf.predict_scores([t for pair in PAIRS for t in pair])
    assert clf.last_counts == (2 * len(PAIRS), len(PAIRS))  # de-duplicated by what the model sees
    # the same model inputs without the rules (the shared run) are different inputs with different scores
    plain = _pair_scores(TitleClassifier(tiny_run_dir / "model"))
    assert not np.allclose(plain[:, 0], plain[:, 1], atol=1e-6)
    pipe = pipeline("text-classification", model=str(model), top_k=None, truncation=True)
    flat = [t for pair in PAIRS for t in pair]
    got = [{d["label"]: d["score"] for d in row} for row in pipe(flat)]
    piped = np.array([[row[lab] for lab in torch_clf.labels] for row in got]).reshape(len(PAIRS), 2, -1)
    assert np.allclose(piped[:, 0], piped[:, 1], atol=1e-6)
    assert np.allclose(piped, _pair_scores(torch_clf), atol=1e-5)


def test_serve_answers_both_spellings_alike(normalized_run_dir):
    import httpx
    import torch

    from jobtitles.serve import ServeSettings, create_app
    from jobtitles.serve.runner import BackgroundServer

    threads = torch.get_num_threads()  # a server's workers set torch's process-wide threads
    flat = [t for pair in PAIRS for t in pair]
    try:
        with BackgroundServer(create_app(ServeSettings(normalized_run_dir / "model", backend="torch"))) as srv:
            r = httpx.post(srv.url + "/predict", json={"titles": flat})
    finally:
        torch.set_num_threads(threads)
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    for k in range(len(PAIRS)):
        assert rows[2 * k]["labels"] == rows[2 * k + 1]["labels"], PAIRS[k]
        assert rows[2 * k]["scores"] == rows[2 * k + 1]["scores"], PAIRS[k]
