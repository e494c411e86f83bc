"""The settings a CUDA run trains with (train/gpu_settings.py), resolved with the CUDA checks patched: the batch
grows to gpu_batch_size, the learning rate by the square root of the growth, min_train_steps shrinks alike, scoring
batches grow, padding goes to a multiple of 8; a CPU run keeps the configured settings."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_train_argv
from jobtitles.cli import train_main
from jobtitles.core.errors import UserError
from jobtitles.core.io_utils import read_json
from jobtitles.train import gpu_settings as gs
from jobtitles.train.config import parse_config
from jobtitles.train.step_rule import steps_rule


def defaults(*flags: str):
    return parse_config(["--config", "base", *flags])


def test_the_defaults_on_a_gpu_grow_the_batch_16_fold_and_the_rate_4_fold():
    project, training = defaults()
    s = gs.gpu_settings(project, training)
    assert (s.factor, s.batch_size, s.min_train_steps, s.eval_batch_size) == (16, 512, 13, 2048)
    assert s.learning_rate == pytest.approx(8e-4)  # 2e-4 x sqrt(16)
    assert s.warmup_steps == pytest.approx(0.1)  # a fraction stays a fraction


@pytest.mark.parametrize("flags,factor,lr", [
    (["--gpu_lr_scaling", "linear"], 16, 3.2e-3),
    (["--gpu_lr_scaling", "none"], 16, 2e-4),
    (["--gpu_batch_size", "100"], 3, 2e-4 * math.sqrt(3)),  # a whole multiple of the configured 32: 96
    (["--gpu_batch_size", "0"], 1, 2e-4),
    (["--gpu_batch_size", "16"], 1, 2e-4),  # smaller than configured: the configured batch
    (["--max_steps", "300"], 1, 2e-4),  # a fixed step count is the user's: its batch too
])
def test_the_scaling_rule_and_what_keeps_the_configured_batch(flags, factor, lr):
    project, training = defaults(*flags)
    s = gs.gpu_settings(project, training)
    assert s.factor == factor and s.batch_size == 32 * factor and s.learning_rate == pytest.approx(lr)


def test_a_warmup_given_in_steps_shrinks_with_the_steps():
    project, training = defaults("--warmup_steps", "100")
    assert gs.gpu_settings(project, training).warmup_steps == 7  # ceil(100 / 16)


def test_a_cpu_run_keeps_every_setting():
    project, training = defaults()
    assert gs.on_gpu(project, training, cuda=False) == (project, training, None)


def test_a_gpu_run_trains_with_them_and_says_so():
    project, training = defaults()
    p2, t2, line = gs.on_gpu(project, training, cuda=True)
    assert (t2.per_device_train_batch_size, t2.per_device_eval_batch_size) == (512, 2048)
    assert t2.learning_rate == pytest.approx(8e-4) and p2.model.min_train_steps == 13
    assert line == ("GPU: batch 32 -> 512 (x16), learning rate 0.0002 -> 0.0008, min_train_steps 200 -> 13, "
                    "scoring batch 2048, padding to a multiple of 8 (gpu_batch_size: 0 keeps the configured batch)")
    # the step rule follows the batch: the same 4 epochs in 1/16 of the steps, the sqrt growth from 6,000 rows
    assert steps_rule(p2, t2)(5840) == 4 * math.ceil(5840 / 512) == 48
    assert steps_rule(p2, t2)(100_000) == math.ceil(4 * math.ceil(6000 / 512) * math.sqrt(100_000 / 6000))


def test_padding_to_a_multiple_of_8_only_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gs.pad_multiple() is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gs.pad_multiple() == 8


def test_a_negative_gpu_batch_is_refused():
    with pytest.raises(UserError, match="gpu_batch_size must be 0 .* found -1"):
        defaults("--gpu_batch_size", "-1")


def test_a_run_on_a_gpu_records_the_settings_it_trained_with(tiny_csv, tiny_model_dir, tmp_path, monkeypatch,
                                                              caplog):
    """The run itself on this CPU, with the device check answering GPU: run_info.json holds the grown batch and
    rate, and the folds train the fewer, larger steps."""
    real = gs.on_gpu
    monkeypatch.setattr("jobtitles.train.cv.on_gpu", lambda p, t: real(p, t, cuda=True))
    out = tmp_path / "run"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--gpu_batch_size", "64", "--n_splits", "2",
                           "--num_train_epochs", "1", "--min_train_steps", "8")
    with caplog.at_level("INFO", logger="jobtitles"):
        assert train_main(argv) == 0
    config = read_json(out / "run_info.json")["config"]
    trained, project = config["training"], config["project"]
    assert (trained["per_device_train_batch_size"], project["min_train_steps"]) == (64, 2)  # 16 x 4; 8 / 4
    assert trained["learning_rate"] == pytest.approx(5e-3 * 2)  # sqrt(4)
    assert "GPU: batch 16 -> 64 (x4)" in caplog.text
    steps = [f["steps"] for f in read_json(out / "cv_results.json")["folds"]]
    assert steps == [2, 2]  # 42-43 training rows in batches of 64: 1 step per epoch, 2 epochs for min 2 steps
