"""`fold_average: true` ships the uniform average of the fold models' and the final model's weights: the saved
model's scores are those of a model built by hand from the saved weights, and differ from the final model's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jobtitles.cli import train_main

from conftest import tiny_train_argv

TITLES = ["VP of Sales", "Chief Executive Officer", "Sales Manager", "Director of Finance", "Software Engineer",
          "Owner", "Senior Director IT"]


@pytest.fixture(scope="module")
def averaged_run(tiny_csv, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "averaged"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--fold_average", "true", "--label_issues", "false")
    argv[argv.index("--score_sources") + 1] = "transformer"
    assert train_main(argv) == 0
    return out


def _scores(model: torch.nn.Module, tokenizer) -> np.ndarray:
    with torch.inference_mode():
        enc = tokenizer(TITLES, padding=True, return_tensors="pt")
        return torch.sigmoid(model(**enc).logits).numpy()


def test_shipped_weights_are_the_average_built_by_hand(averaged_run):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from jobtitles import TitleClassifier

    model_dir = averaged_run / "model"
    sources = [averaged_run / "folds" / f"fold_{k}" / "model" for k in range(2)] + \
        [averaged_run / "folds" / "final" / "model"]
    states = [load_file(str(folder / "model.safetensors")) for folder in sources]
    by_hand = {name: sum(s[name] for s in states) / len(states) for name in states[0]}
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    shipped = _scores(model, tokenizer)
    missing, unexpected = model.load_state_dict(by_hand, strict=False)
    assert not unexpected
    assert np.allclose(_scores(model, tokenizer), shipped, atol=1e-6)
    assert np.allclose(TitleClassifier(model_dir).predict_scores(TITLES), shipped, atol=1e-5)
    # not a copy of one of the models: each of them scores otherwise
    for folder in sources:
        own = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
        assert np.abs(_scores(own, tokenizer) - shipped).max() > 1e-3, folder
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert "average of the weights of 2 fold models and the final model" in card


def test_fold_average_needs_the_final_model(tiny_csv, tiny_model_dir, tmp_path, capsys):
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, tmp_path / "run", "--fold_average", "true",
                           "--final_model", "false")
    assert train_main(argv) != 0
    err = capsys.readouterr().err
    assert "fold_average is true but final_model is false" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before any data was read or folder written
