import numpy as np
import torch
from transformers import AutoTokenizer, TrainingArguments

from jobtitles.features import build_dataset, model_columns, tokenize_dataset
from jobtitles.losses import weighted_bce_loss
from jobtitles.training import FoldRun, build_model


def test_fold_scores_line_up_with_rows_under_length_grouping(tiny_model_dir, tmp_path):
    titles = ["CEO", "Senior Director of Global Corporate Communications and Investor Relations", "VP Sales",
              "Software Engineer II, Platform Infrastructure Team", "Mgr", "Head of People"] * 5
    y = np.eye(3, dtype=np.float32)[np.arange(len(titles)) % 3]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = model_columns(tokenize_dataset(build_dataset(titles, y, list(range(len(titles)))), tok, 32))
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

    from jobtitles.training import cpu_threads

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
    from jobtitles.training import epochs_for_budget

    assert epochs_for_budget(4, 800, 32, 200) == 8.0  # 25 steps an epoch: 100 steps at 4 epochs -> 8 epochs
    assert epochs_for_budget(4, 1792, 32, 200) == 4  # 56 steps an epoch: 224 >= 200, unchanged
    assert epochs_for_budget(4, 400, 32, 0) == 4  # turned off
    assert epochs_for_budget(3, 100, 4, 200) == 8.0  # 25 steps an epoch at batch 4
