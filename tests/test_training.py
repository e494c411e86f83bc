import numpy as np
import torch
from transformers import AutoTokenizer, TrainingArguments

from jobtitles.core.tokenization import training_dataset
from jobtitles.train.losses import weighted_bce_loss
from jobtitles.train.training import FoldRun, build_model


def test_fold_scores_line_up_with_rows_under_length_grouping(tiny_model_dir, tmp_path):
    titles = ["CEO", "Senior Director of Global Corporate Communications and Investor Relations", "VP Sales",
              "Software Engineer II, Platform Infrastructure Team", "Mgr", "Head of People"] * 5
    y = np.eye(3, dtype=np.float32)[np.arange(len(titles)) % 3]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = training_dataset(titles, y, list(range(len(titles))), tok, 32)
    model = build_model(str(tiny_model_dir), ["a", "b", "c"], seed=0)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4,
                             per_device_eval_batch_size=4, train_sampling_strategy="group_by_length",
                             report_to="none", save_strategy="no", use_cpu=True)
    run = FoldRun(model, args, ds, tok, y, "none")
    run.train()
    scores = run.scores(ds)
    model.eval()
    with torch.no_grad():
        for i in (0, 1, 3, 4):
            expected = torch.sigmoid(model(**tok(titles[i], return_tensors="pt")).logits)[0].numpy()
            assert np.allclose(scores[i], expected, atol=1e-5), i


def test_weighted_loss_matches_torch_reference():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = weighted_bce_loss(np.array([3.0, 0.5], dtype=np.float32))({"logits": logits}, labels)
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 0.5]))(logits, labels)
    assert torch.isclose(loss, expected)
    s = torch.sigmoid(logits)
    by_hand = -(3.0 * torch.log(s[0, 0]) + torch.log(1 - s[0, 1]) + torch.log(1 - s[1, 0]) + 0.5 * torch.log(s[1, 1])) / 4
    assert torch.isclose(loss, by_hand)


def test_cpu_threads_auto_divides_this_process_cores_among_local_processes(monkeypatch):
    import os

    from jobtitles.train.training import cpu_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert cpu_threads(0, 1) == 8  # not the 1 thread `accelerate launch` would export
    assert cpu_threads(0, 2) == 4
    assert cpu_threads(0, 16) == 1
    assert cpu_threads(3, 2) == 3  # an explicit setting wins


def test_train_sets_cpu_threads_from_config(tiny_csv, tiny_model_dir, tmp_path, monkeypatch):
    import torch

    from conftest import tiny_train_argv
    from jobtitles.cli import train_main

    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    calls: list[int] = []
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, tmp_path / "run", "--cpu_threads", "3", "--final_model", "false",
                           "--num_train_epochs", "1", "--baseline", "false")
    assert train_main(argv) == 0
    assert calls == [3]


def test_small_data_gets_enough_steps_and_large_data_keeps_its_epochs():
    from jobtitles.train.training import epochs_for_budget

    assert epochs_for_budget(4, 800, 32, 200) == 8.0  # 25 steps an epoch: 100 steps at 4 epochs -> 8 epochs
    assert epochs_for_budget(4, 1792, 32, 200) == 4  # 56 steps an epoch: 224 >= 200, unchanged
    assert epochs_for_budget(4, 400, 32, 0) == 4  # turned off
    assert epochs_for_budget(3, 100, 4, 200) == 8.0  # 25 steps an epoch at batch 4


def test_auto_precision_is_bf16_only_where_the_cpu_has_it_natively(monkeypatch):
    import pytest

    from jobtitles.train import training
    from jobtitles.core.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    auto = training.resolve_precision("auto")
    assert (auto.name, auto.device) == ("bf16", "cpu")
    assert auto.flags() == {"bf16": True, "fp16": False, "use_cpu": True}
    assert training.resolve_precision("fp32").flags() == {"bf16": False, "fp16": False}
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    assert training.resolve_precision("auto").name == "fp32"
    assert training.resolve_precision("auto").flags() == {"bf16": False, "fp16": False}
    assert training.resolve_precision("bf16").flags()["bf16"]  # forced: emulated, with a warning
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        training.resolve_precision("fp16")


def test_trainer_autocasts_to_bf16_on_cpu_only_when_asked(tiny_model_dir, tmp_path):
    """The Trainer itself (through accelerate) runs the forward pass in bf16; the master weights stay fp32."""
    from jobtitles.train.training import run_args

    titles = ["Chief Executive Officer", "VP Sales", "Sales Manager", "Software Engineer"] * 4
    y = np.eye(2, dtype=np.float32)[np.arange(len(titles)) % 2]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = training_dataset(titles, y, list(range(len(titles))), tok, 16)
    base = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4,
                             report_to="none", save_strategy="no", use_cpu=True)
    seen = {}
    for precision in ("bf16", "fp32"):
        model = build_model(str(tiny_model_dir), ["a", "b"], seed=0)
        layer = model.distilbert.transformer.layer[0].attention.q_lin
        handle = layer.register_forward_hook(lambda m, i, o, p=precision: seen.setdefault(p, o.dtype) and None)
        FoldRun(model, run_args(base, tmp_path / precision, precision), ds, tok, y, "none").train()
        handle.remove()
        assert layer.weight.dtype == torch.float32
    assert seen == {"bf16": torch.bfloat16, "fp32": torch.float32}


def test_pos_weight_is_the_loss_the_trainer_minimises(tiny_model_dir, tmp_path):
    """The weighted BCE reaches the real Trainer: its logged loss equals the weighted loss of the batch."""
    import pytest

    from jobtitles.train.losses import pos_weight

    titles = ["Chief Executive Officer", "VP Sales", "Sales Manager", "Software Engineer", "Head of HR",
              "Director of Finance", "Account Executive", "CTO"]
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [0, 0], [1, 0], [0, 0], [1, 0]], dtype=np.float32)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = training_dataset(titles, y, list(range(len(titles))), tok, 16)
    model = build_model(str(tiny_model_dir), ["a", "b"], seed=0)
    for module in model.modules():  # no dropout: the training-mode forward equals the one below
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=len(titles),
                             learning_rate=0.0, logging_steps=1, report_to="none", save_strategy="no", use_cpu=True)
    run = FoldRun(model, args, ds, tok, y, "inverse_frequency")
    run.train()
    model.eval()
    with torch.no_grad():
        logits = model(**tok(titles, padding=True, return_tensors="pt")).logits
    weights = torch.tensor(pos_weight(y, "inverse_frequency"))
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=weights)(logits, torch.tensor(y)).item()
    plain = torch.nn.BCEWithLogitsLoss()(logits, torch.tensor(y)).item()
    assert weights.tolist() == pytest.approx([1.0, 7.0]) and abs(expected - plain) > 0.05
    assert run.loss_history()[0]["loss"] == pytest.approx(expected, rel=1e-3)
