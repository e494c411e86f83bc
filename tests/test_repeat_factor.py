import numpy as np
import pytest
from transformers import AutoTokenizer, TrainingArguments

from jobtitles.core.errors import UserError
from jobtitles.core.tokenization import training_dataset
from jobtitles.train.project_args import ModelArgs
from jobtitles.train.rare_labels import repeat_factors, repeated_rows
from jobtitles.train.training import FoldRun, build_model


def _labels(n: int, rare_rows: list[int]) -> np.ndarray:
    """Label 0 on every row, label 1 on `rare_rows` only."""
    y = np.zeros((n, 2), dtype=np.float32)
    y[:, 0] = 1
    y[rare_rows, 1] = 1
    return y


def test_repeat_factor_is_sqrt_of_threshold_over_frequency_for_the_rarest_label_of_a_row():
    y = _labels(100, [7])  # label 1 on 1% of the rows
    factors = repeat_factors(y, 0.04)
    assert factors[7] == pytest.approx(2.0)  # sqrt(0.04 / 0.01)
    assert np.all(np.delete(factors, 7) == 1.0)  # label 0 on every row: never repeated
    assert np.all(repeat_factors(y, 0.005) == 1.0)  # threshold below every frequency: off
    no_label = np.zeros((3, 2), dtype=np.float32)
    assert np.all(repeat_factors(no_label, 0.5) == 1.0)


def test_repeated_rows_repeat_whole_factors_exactly_and_fractions_on_average():
    y = _labels(100, [7])
    rows = repeated_rows(y, 0.09, seed=0)  # factor 3 for row 7
    assert np.bincount(rows, minlength=100)[7] == 3
    assert len(rows) == 102 and np.array_equal(np.unique(rows), np.arange(100))
    # factor sqrt(2): two or one copies, about 1.414 on average over seeds; the same seed, the same rows
    counts = [np.bincount(repeated_rows(y, 0.02, seed=s), minlength=100)[7] for s in range(400)]
    assert set(counts) == {1, 2} and np.mean(counts) == pytest.approx(np.sqrt(2), abs=0.07)
    assert np.array_equal(repeated_rows(y, 0.02, seed=5), repeated_rows(y, 0.02, seed=5))


def test_fold_run_trains_on_the_repeated_rows_only_when_asked(tiny_model_dir, tmp_path):
    titles = [f"Engineer {i}" for i in range(19)] + ["Owner"]
    y = _labels(20, [19])  # label 1 on 5% of the rows: factor 2 at threshold 0.2
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = training_dataset(titles, y, list(range(len(titles))), tok, 16)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4,
                             report_to="none", save_strategy="no", use_cpu=True, seed=3)
    plain = FoldRun(build_model(str(tiny_model_dir), ["a", "b"], seed=0), args, ds, tok, y, "none")
    assert len(plain.trainer.train_dataset) == 20
    run = FoldRun(build_model(str(tiny_model_dir), ["a", "b"], seed=0), args, ds, tok, y, "none",
                  repeat_threshold=0.2)
    trained = run.trainer.train_dataset
    assert len(trained) == 21 and trained["input_ids"].count(ds[19]["input_ids"]) == 2


def test_repeat_factor_threshold_is_checked_with_the_settings():
    with pytest.raises(UserError, match="repeat_factor_threshold must be a fraction"):
        ModelArgs(repeat_factor_threshold=1.5)
    with pytest.raises(UserError, match="repeat_factor_threshold"):
        ModelArgs(repeat_factor_threshold=float("nan"))
