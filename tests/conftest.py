"""Shared fixtures: a tiny randomly initialised DistilBERT (built from a config, tokenizer from the embedded
encoder's uncased WordPiece vocabulary) and small CSVs in the user's schema. Everything runs offline on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_VOCAB_SIZE = 30522  # the uncased WordPiece vocabulary of the embedded encoder (= distilbert-base-uncased)

LEVELS = {
    "Manager": ["Sales Manager", "Manager, Finance", "Mgr Operations", "Product Manager", "IT Manager",
                "Marketing Manager", "Senior Manager HR", "Office Manager"],
    "Director": ["Director of Sales", "Finance Director", "Dir. Marketing", "Head of Engineering",
                 "Director, HR", "Senior Director IT", "Director Operations", "Head of Product"],
    "Vice President": ["VP Sales", "Vice President Finance", "SVP Marketing", "EVP Operations", "VP of HR",
                       "VP Engineering", "Vice President, Product", "AVP IT"],
    "Chief Officer": ["CEO", "CFO", "CTO", "Chief Marketing Officer", "COO", "CIO", "Chief People Officer",
                      "CISO"],
    "Individual Contributor/Staff": ["Software Engineer", "Accountant", "Sales Rep", "Analyst", "Recruiter",
                                     "Designer", "Data Scientist", "Account Executive"],
}


def write_csv(path: Path, rows: list[tuple[str, list[str]]], n_cols: int = 3) -> Path:
    lines = ["Title;" + ";".join(f"Column {i + 1}" for i in range(n_cols))]
    for title, labels in rows:
        cells = labels + [""] * (n_cols - len(labels))
        lines.append(";".join([title, *cells]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for label, titles in LEVELS.items():
        for t in titles:
            rows.append((t, [label]))
            rows.append((f"Senior {t} EMEA", [label]))
    rows += [("CEO & Founder", ["Chief Officer", "Owner"]), ("Owner", ["Owner"]),
             ("Director / Manager", ["Director", "Manager"]), ("VP and General Manager", ["Vice President", "Manager"]),
             ("Board Member", [])]
    return rows


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "titles.csv", sample_rows())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide DistilBERT with random weights, saved like any checkpoint folder."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    from jobtitles.core.embedded import embedded_model_dir

    folder = tmp_path_factory.mktemp("tiny-distilbert")
    # Loaded from the embedded encoder's folder: built from `vocab_file=` alone, transformers 5 returns a
    # 5-token vocabulary that maps every word to [UNK], and every test built on it would exercise nothing.
    tokenizer = DistilBertTokenizerFast.from_pretrained(str(embedded_model_dir()))
    assert tokenizer.vocab_size == TINY_VOCAB_SIZE, tokenizer.vocab_size
    ids = tokenizer("VP of Sales")["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(ids) == 5, ids  # [CLS] vp of sales [SEP]
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                              max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    DistilBertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_train_argv(csv: Path, model_dir: Path, out: Path, *extra: str) -> list[str]:
    """The real base config, shrunk for tests (lightning-hydra-template style); 80 optimizer steps per model are
    what the tiny random model needs to learn the training titles at all (12 left it at a constant guess)."""
    root = Path(__file__).resolve().parents[1]
    return ["--config", str(root / "configs" / "base.yaml"), "--train_file", str(csv),
            "--model_name_or_path", str(model_dir), "--output_dir", str(out), "--n_splits", "2",
            "--num_train_epochs", "4", "--learning_rate", "5e-3", "--per_device_train_batch_size", "16",
            "--max_length", "16", "--tune_min_support", "3", "--min_train_steps", "80",
            # the score-source path (baseline.skops, the pipeline gap) is what most backend tests need covered;
            # unweighted BCE: the weights push the tiny random model's rare-label scores to where int8 rounding
            # flips them, which says nothing about a real encoder (its export is checked on its own parity rows).
            # test_rare_labels runs the defaults of both end to end.
            "--score_sources", "auto", "--pos_weight", "none", *extra]


@pytest.fixture(scope="session")
def tiny_run_dir(tiny_csv, tiny_model_dir, tmp_path_factory) -> Path:
    """One real train.py run (2 folds + final model) on the tiny model, shared by every test that needs a
    trained run folder (outputs/<run>/ with model/ inside). Tests must not modify it: copy it first."""
    from jobtitles.cli import train_main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert train_main(tiny_train_argv(tiny_csv, tiny_model_dir, out)) == 0
    return out


@pytest.fixture(scope="session")
def normalized_run_dir(tiny_csv, tiny_model_dir, tmp_path_factory) -> Path:
    """A run with `title_normalization: abbreviations`, every label on the transformer (so a plain pipeline
    gives the shipped scores), 2 folds + final model. Tests must not modify it: copy it first."""
    from jobtitles.cli import train_main

    out = tmp_path_factory.mktemp("runs") / "normalized"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--title_normalization", "abbreviations",
                           "--label_issues", "false")
    argv[argv.index("--score_sources") + 1] = "transformer"
    assert train_main(argv) == 0
    return out


def make_rule(labels, thresholds=0.5, at_least_one: bool = True, exclusive: int | None = None, groups=()):
    """A DecisionRule from test arrays: `labels` a list of names or a count, `exclusive` a column, `groups`
    (column indices, exactly_one) pairs."""
    import numpy as np

    from jobtitles.core.decision_rule import DecisionRule
    from jobtitles.core.label_groups import AT_MOST_ONE, EXACTLY_ONE, LabelGroup

    names = tuple(labels) if not isinstance(labels, int) else tuple(f"label {j}" for j in range(labels))
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(names),))
    made = tuple(LabelGroup(f"group {k}", tuple(names[int(j)] for j in cols), EXACTLY_ONE if one else AT_MOST_ONE)
                 for k, (cols, one) in enumerate(groups or ()))
    return DecisionRule(names, tuple(float(t) for t in thr), at_least_one,
                        names[exclusive] if exclusive is not None else None, made)


def decide(scores, thresholds=0.5, at_least_one: bool = True, exclusive: int | None = None, groups=()):
    """`make_rule(...).decide(scores)` for a score matrix."""
    import numpy as np

    return make_rule(np.shape(scores)[1], thresholds, at_least_one, exclusive, groups).decide(scores)
