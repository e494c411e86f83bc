"""`hp_search_trials`: the Trainer's own hyperparameter_search (Optuna) runs per model on that model's training
rows only: no row of a fold's test split reaches the fold's search, the fold model trains with the best trial's
values, and the final model searches inside all rows."""

from __future__ import annotations

import csv
import json

import pytest

from jobtitles.cli import train_main

from conftest import tiny_train_argv


def test_searches_stay_inside_each_model_s_training_rows(tiny_csv, tiny_model_dir, tmp_path, monkeypatch):
    from jobtitles.train import hp_search

    seen: list[dict] = []
    real = hp_search.search
    ids = lambda ds: {tuple(x) for x in ds["input_ids"]}  # noqa: E731 - a title as the model sees it

    def spy(make_trainer, train_ds, y, args, rule, n_trials, seed, out_dir, softmax=None):
        inner, val = hp_search.search_split(y, seed)
        seen.append({"rows": ids(train_ds), "n": len(train_ds), "val": len(val)})

        def recording(trial_args, inner_ds, val_ds, y_inner, metrics):
            seen[-1]["trial_rows"] = ids(inner_ds) | ids(val_ds)
            seen[-1]["disjoint"] = not (ids(inner_ds) & ids(val_ds))
            return make_trainer(trial_args, inner_ds, val_ds, y_inner, metrics)

        return real(recording, train_ds, y, args, rule, n_trials, seed, out_dir, softmax)

    monkeypatch.setattr(hp_search, "search", spy)
    from jobtitles.train import cv, final, training

    trained_with: list[dict] = []

    class RecordingRun(training.FoldRun):
        def __init__(self, model, args, *rest, **kw):
            trained_with.append({k: getattr(args, k) for k in ("learning_rate", "weight_decay", "warmup_steps",
                                                               "per_device_train_batch_size")})
            super().__init__(model, args, *rest, **kw)

    monkeypatch.setattr(cv, "FoldRun", RecordingRun)
    monkeypatch.setattr(final, "FoldRun", RecordingRun)
    out = tmp_path / "run"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--hp_search_trials", "2", "--label_issues", "false",
                           "--min_train_steps", "10")
    assert train_main(argv) == 0
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out / "model"))
    with (out / "oof_predictions.csv").open(encoding="utf-8", newline="") as f:
        title_of = {int(r["row"]): r["title"] for r in csv.DictReader(f, delimiter=";")}
    as_ids = lambda rows: {tuple(tokenizer(title_of[r], truncation=True, max_length=16)["input_ids"])  # noqa: E731
                           for r in rows}
    folds = json.loads((out / "folds.json").read_text())
    assert len(seen) == len(folds) + 1  # each fold model and the final model
    for k, fold in enumerate(folds):
        s = seen[k]
        assert s["rows"] == as_ids(fold["train_rows"]) and not s["rows"] & as_ids(fold["test_rows"])
        assert s["trial_rows"] == s["rows"] and s["disjoint"]
        assert s["val"] == pytest.approx(0.2 * s["n"], abs=2)
        record = json.loads((out / "folds" / f"fold_{k}" / "hp_search.json").read_text())
        assert record["trials"] == 2 and record["search_rows"] + record["validation_rows"] == len(fold["train_rows"])
        assert set(record["hyperparameters"]) == {"learning_rate", "weight_decay", "warmup_steps",
                                                  "per_device_train_batch_size"}
        assert trained_with[k] == record["hyperparameters"]  # the fold model trained with the best trial's values
    all_rows = set(folds[0]["train_rows"]) | set(folds[0]["test_rows"])
    assert seen[-1]["rows"] == as_ids(all_rows)  # the final model: all rows
    final_record = json.loads((out / "folds" / "final" / "hp_search.json").read_text())
    assert final_record["search_rows"] + final_record["validation_rows"] == len(all_rows)
    assert trained_with[-1] == final_record["hyperparameters"] and len(trained_with) == len(folds) + 1


def test_the_best_trial_s_values_reach_the_model_s_arguments(tmp_path):
    from transformers import TrainingArguments

    from jobtitles.train.hp_search import SearchResult, searched_args

    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=5e-5, warmup_steps=0.0)
    best = SearchResult({"learning_rate": 1.2e-4, "weight_decay": 0.05, "warmup_steps": 0.1,
                         "per_device_train_batch_size": 64}, 0.9, 3, 80, 20)
    got = searched_args(args, best, tmp_path, "fold 1", True)
    assert (got.learning_rate, got.weight_decay, got.warmup_steps, got.per_device_train_batch_size) == \
        (1.2e-4, 0.05, 0.1, 64)
    assert json.loads((tmp_path / "hp_search.json").read_text())["objective"] == 0.9


def test_search_and_time_budget_are_refused_together(tiny_csv, tiny_model_dir, tmp_path, capsys):
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, tmp_path / "run", "--hp_search_trials", "3",
                           "--time_budget", "10m")
    assert train_main(argv) != 0
    err = capsys.readouterr().err
    assert "hp_search_trials and time_budget are both set" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
