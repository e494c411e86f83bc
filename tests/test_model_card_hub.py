"""The model card as the Hub reads it, checked with huggingface_hub's own parsers (offline): licence and language
from the base model, widget examples that are real training titles, the CV protocol in model-index, the
intended-uses section, and the synthetic-sample notice decided by the CSV's bytes."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from jobtitles.core.io_utils import read_json, sha256_file
from jobtitles.reporting import model_card as mc
from jobtitles.selection.run_result import RunResult
from jobtitles.train.config import parse_config

from conftest import tiny_train_argv, write_csv

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "job_titles.csv"
INTENDED = "## Intended uses, out-of-scope uses, bias and risks"


def gold_sets(path: Path, empty_label: str = "Not Required") -> dict[str, set[str]]:
    """title -> its gold label set, read with the csv module (independently of the project's reader)."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))[1:]
    return {row[0]: {c for c in row[1:] if c.strip()} or {empty_label} for row in rows if row and row[0].strip()}


def shortest_alone(gold: dict[str, set[str]], label: str) -> str:
    return min((t for t, labs in gold.items() if labs == {label}), key=lambda t: (len(t), t))


@pytest.fixture(scope="module")
def card(tiny_run_dir) -> ModelCard:
    return ModelCard.load(tiny_run_dir / "model" / "README.md")


@pytest.fixture(scope="module")
def result(tiny_run_dir) -> RunResult:
    return RunResult.from_json(read_json(tiny_run_dir / "cv_results.json"))


def sample_card(result: RunResult, csv_path: Path, tmp_path: Path) -> tuple[ModelCard, mc.TrainingData]:
    """make_card for a run of the embedded encoder on `csv_path`, saved and loaded back as the Hub would."""
    project, training = parse_config(tiny_train_argv(csv_path, "embedded", tmp_path / "run"))
    r = dataclasses.replace(result, train_file=str(csv_path))
    data = mc.training_data(project.data.load(r.n_splits), r.labels, sha256_file(csv_path))
    mc.make_card(r, project, training, data).save(tmp_path / "README.md")
    return ModelCard.load(tmp_path / "README.md"), data


def test_tiny_run_card_metadata_as_the_hub_reads_it(tiny_run_dir, tiny_csv, tiny_model_dir, card, result):
    meta = card.data.to_dict()
    assert metadata_load(tiny_run_dir / "model" / "README.md") == meta
    # the tiny base model is a local folder without a card: no licence or language is claimed, the text says so
    assert "license" not in meta and "language" not in meta and "datasets" not in meta
    assert "**Licence: not set.**" in card.text and "Set `license:` in the metadata" in card.text
    assert str(tiny_model_dir) not in card.content  # a public card names no path of the training machine
    gold = gold_sets(tiny_csv)
    widget = meta["widget"]
    assert 1 <= len(widget) <= mc.WIDGET_MOST
    for ex in widget:
        assert gold[ex["text"]] == {ex["example_title"]}, ex  # a real training title, alone in its label
    first = [ex["text"] for ex in widget[:len(result.labels)]]
    assert first == [shortest_alone(gold, lab) for lab in result.labels]


def test_model_index_carries_the_cv_protocol(card, result):
    name, evals = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == "job-title-classifier" and len(evals) == len(mc.CARD_METRICS)
    figures = result.summary[result.shipped_variant]
    for ev, key in zip(evals, mc.CARD_METRICS):
        assert ev.dataset_split == "train" and ev.dataset_name == "titles.csv" and ev.dataset_type == "csv"
        assert ev.dataset_args == {"protocol": "2-fold cross-validation, out-of-fold",
                                   "splitter": "MultilabelStratifiedKFold", "n_splits": 2, "n_rows": result.n_rows}
        assert ev.metric_config == "mean over 2 folds"
        assert ev.metric_value == round(figures[key]["mean"], 4)
        assert ev.metric_args["std"] == round(figures[key]["std"], 4)
    assert "**mean ± standard deviation over the 2 folds**" in card.text


def test_card_text_intended_uses_and_example_titles(card, result, tiny_csv):
    text = card.text
    assert INTENDED in text and mc.SAMPLE_TEXT not in text  # the tiny CSV is not the project's sample
    section = text.split(INTENDED)[1].split("## Limitations")[0]
    assert "Out of scope." in section and "hire" in section and "human in the loop" in section
    for lab, f1, _ in mc.weakest_labels(result, 3):
        assert f"**{lab}** ({result.label_support[lab]} rows, F1 {f1:.3f})" in section
    gold = gold_sets(tiny_csv)
    for lab in result.labels:
        alone = sorted((t for t, labs in gold.items() if labs == {lab}), key=lambda t: (len(t), t))[:3]
        assert f"| {lab} | {result.label_support[lab]} | {' · '.join(alone) or '–'} |" in text, lab


def test_sample_data_is_named_by_its_bytes(result, tmp_path):
    assert sha256_file(SAMPLE) == mc.SAMPLE_CSV_SHA256  # data/make_sample.py's output; update the constant
    card, data = sample_card(result, SAMPLE, tmp_path / "sample")
    meta = card.data.to_dict()
    assert data.is_sample and mc.SAMPLE_TEXT in card.text
    assert meta["license"] == "apache-2.0" and meta["language"] == "en"  # the embedded encoder's card
    assert "sentence-transformers/all-MiniLM-L6-v2" in card.text.split("**Licence: `apache-2.0`**")[1][:200]
    gold = gold_sets(SAMPLE)
    assert meta["widget"] and all(gold[ex["text"]] == {ex["example_title"]} for ex in meta["widget"])
    copy = shutil.copy(SAMPLE, tmp_path / "renamed.csv")  # the sample under another name is still the sample
    assert mc.SAMPLE_TEXT in sample_card(result, Path(copy), tmp_path / "renamed")[0].text
    edited = tmp_path / "other" / "job_titles.csv"  # another file with the sample's name is not
    edited.parent.mkdir()
    edited.write_bytes(SAMPLE.read_bytes() + b"Data Analyst;Individual Contributor/Staff;;;\n")
    card, data = sample_card(result, edited, tmp_path / "edited")
    assert not data.is_sample and mc.SAMPLE_TEXT not in card.text


def test_base_model_licence_and_language(tmp_path, tiny_model_dir):
    embedded = mc.base_model_facts("embedded")
    assert (embedded.license, embedded.language) == ("apache-2.0", "en")
    local = tmp_path / "base"
    local.mkdir()
    (local / "README.md").write_text("---\nlicense: other\nlicense_name: acme-1\nlicense_link: LICENSE\n"
                                     "language: [en, de]\n---\n# base\n", encoding="utf-8")
    facts = mc.base_model_facts(str(local))
    assert (facts.license, facts.license_name, facts.license_link, facts.language) == \
        ("other", "acme-1", "LICENSE", ["en", "de"])
    assert str(tmp_path) not in facts.source and "base (a local folder)" in facts.source
    for unknown in (str(tiny_model_dir), "nobody-here/not-cached-model", "not a repo id!"):
        facts = mc.base_model_facts(unknown)
        assert facts.license is None and facts.language is None, unknown
        assert "**Licence: not set.**" in mc.licence_text(facts)
    (local / "README.md").write_text("---\nlicense: [unclosed\n---\n", encoding="utf-8")
    assert mc.base_model_facts(str(local)).license is None  # a broken card claims nothing


def test_titles_are_escaped_and_cut_in_tables(result):
    assert mc.md_cell("VP | Sales\n<b>*EMEA*</b> `x` [a](b)") == \
        r"VP \| Sales &lt;b&gt;\*EMEA\*&lt;/b&gt; \`x\` \[a\](b)"
    assert mc.md_cell("x" * 100) == "x" * 59 + "…"
    lab = result.labels[0]
    table = mc.labels_table(result, mc.TrainingData(examples={lab: ("Mgr | Ops\n# heading",)}))
    assert len(table.splitlines()) == 2 + len(result.labels)  # every title stays inside its row
    assert f"| {lab} | {result.label_support[lab]} | Mgr \\| Ops \\# heading |" in table


def test_the_card_s_hash_is_the_one_the_run_recorded(tmp_path, tiny_run_dir, tiny_csv):
    assert mc.recorded_sha256(tiny_run_dir) == sha256_file(tiny_csv)
    assert mc.recorded_sha256(tmp_path) is None  # no run_info.json: no hash, so never "the sample"
    (tmp_path / "run_info.json").write_text('{"fingerprint": {}}', encoding="utf-8")
    assert mc.recorded_sha256(tmp_path) is None


def test_hub_dataset_file_is_named_in_datasets(result, tmp_path, tiny_csv):
    cached = tmp_path / "hub" / "datasets--acme--job-titles" / "snapshots" / "0123abc" / "titles.csv"
    cached.parent.mkdir(parents=True)
    write_csv(cached, [("CEO", ["Chief Officer"]), ("VP Sales", ["Vice President"])])
    assert mc.hub_dataset_id(str(cached)) == "acme/job-titles" and mc.hub_dataset_id(str(tiny_csv)) is None
    project, training = parse_config(tiny_train_argv(cached, tmp_path, tmp_path / "run"))
    r = dataclasses.replace(result, train_file=str(cached))
    meta = mc.make_card(r, project, training, mc.TrainingData()).data.to_dict()
    assert meta["datasets"] == ["acme/job-titles"] and "widget" not in meta
    ev = model_index_to_eval_results(meta["model-index"])[1][0]
    assert (ev.dataset_type, ev.dataset_name) == ("acme/job-titles", "acme/job-titles")
