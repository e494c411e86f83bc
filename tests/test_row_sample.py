"""Large sets: the linear-probe head and the final model's fit check look at a stratified sample that keeps every row
of the rare labels, and the time budget plans their cost on the sample."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jobtitles.train import row_sample
from jobtitles.core.data import load_labeled_csv
from jobtitles.core.io_utils import read_json
from jobtitles.train.row_sample import large_set_rows, stratified_rows
from jobtitles.core.tokenization import training_dataset
from jobtitles.reporting.report import final_text
from jobtitles.selection.run_result import RunResult
from jobtitles.train import head_init
from jobtitles.train.budget import Shape, Throughput, timeline
from jobtitles.train.final import check_rows, fit_check
from jobtitles.train.training import build_model, fresh_model, load_tokenizer


def labels(n: int, seed: int = 0) -> np.ndarray:
    """One of 4 common levels per row, and a rare label on every 50th row."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 5), dtype=np.float32)
    y[np.arange(n), rng.integers(0, 4, n)] = 1
    y[::50, 4] = 1
    return y


def test_stratified_rows_are_exactly_n_sorted_and_keep_the_label_mix():
    y = labels(5000)
    rows = stratified_rows(y, 1000, seed=3)
    assert len(rows) == len(set(rows.tolist())) == 1000 and np.all(np.diff(rows) > 0)
    np.testing.assert_allclose(y[rows].mean(axis=0), y.mean(axis=0), atol=0.01)
    assert stratified_rows(y, 5000, seed=3) is None and stratified_rows(y, 6000, seed=3) is None
    assert np.array_equal(stratified_rows(y, 1000, seed=3), rows)  # seeded


def test_a_large_set_sample_keeps_every_row_of_its_rare_labels(monkeypatch):
    monkeypatch.setattr(row_sample, "LARGE_SET_ROWS", 1000)
    monkeypatch.setattr(row_sample, "RARE_LABEL_ROWS", 150)
    y = labels(5000)  # the rare label: 100 rows, 20 of them in a plain stratified sample of 1,000
    rows = large_set_rows(y, seed=0)
    rare = np.flatnonzero(y[:, 4])
    assert len(rare) == 100 and set(rare.tolist()) <= set(rows.tolist())
    assert len(rows) == 1000 + 80  # the stratified 1,000 (20 rare among them) and the other 80 rare rows
    assert large_set_rows(y[:1000], seed=0) is None  # no more rows than the sample: all of them


def _tiny(tiny_csv, tiny_model_dir):
    data = load_labeled_csv(tiny_csv)
    tok = load_tokenizer(str(tiny_model_dir))
    return data, tok, training_dataset(data.titles, data.y, data.rows, tok, 16)


def test_the_probe_of_a_large_set_is_fitted_on_the_sample(tiny_csv, tiny_model_dir, monkeypatch):
    data, tok, ds = _tiny(tiny_csv, tiny_model_dir)
    monkeypatch.setattr(row_sample, "LARGE_SET_ROWS", 30)
    monkeypatch.setattr(row_sample, "RARE_LABEL_ROWS", 0)
    rows = large_set_rows(data.y, seed=0)
    assert rows is not None and len(rows) == 30 < len(data)

    model = fresh_model(str(tiny_model_dir), data.labels, 0, "linear_probe", 10.0, ds, data.y, tok)
    # the head is exactly the probe fitted by hand on the sample's frozen features
    by_hand = build_model(str(tiny_model_dir), data.labels, seed=0)
    weight, bias = head_init.fit_probe(head_init.head_inputs(by_hand, ds.select(rows), tok), data.y[rows], 10.0, 0)
    layer = head_init.output_layer(model)
    np.testing.assert_allclose(layer.weight.detach().numpy(), weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.bias.detach().numpy(), bias, rtol=1e-5, atol=1e-6)
    # and not the probe of all rows
    all_weight, _ = head_init.fit_probe(head_init.head_inputs(by_hand, ds, tok), data.y, 10.0, 0)
    assert not np.allclose(layer.weight.detach().numpy(), all_weight, atol=1e-3)


def test_the_fit_check_of_a_large_set_judges_the_sample_and_says_so(tiny_csv, tiny_model_dir, tiny_run_dir,
                                                                   monkeypatch):
    data, tok, ds = _tiny(tiny_csv, tiny_model_dir)
    result = RunResult.from_json(read_json(tiny_run_dir / "cv_results.json"))
    assert check_rows(data, ds, seed=0) == (data, ds)  # a small set: every training row
    monkeypatch.setattr(row_sample, "LARGE_SET_ROWS", 40)
    monkeypatch.setattr(row_sample, "RARE_LABEL_ROWS", 0)
    checked, checked_ds = check_rows(data, ds, seed=0)
    rows = large_set_rows(data.y, seed=0)
    assert checked.titles == [data.titles[i] for i in rows] and checked.rows == [data.rows[i] for i in rows]
    assert checked_ds["input_ids"] == ds.select(rows)["input_ids"] and np.array_equal(checked.y, data.y[rows])
    check = fit_check(checked.y.copy(), checked, result)  # scores = the given labels: a perfect fit
    assert check.n_rows == 40 and check.train_rows["subset_accuracy"] == 1.0
    text = final_text(dataclasses.replace(result, final_fit_check=check))
    assert "On a stratified sample of 40 of its training rows" in text
    full = fit_check(data.y.copy(), data, result)
    assert full.n_rows == len(data) and "On its own training rows" in final_text(
        dataclasses.replace(result, final_fit_check=full))


@pytest.mark.parametrize("n_rows", [100_000, 500_000])
def test_the_plan_counts_heads_and_the_fit_check_on_the_sample(n_rows):
    # 1 ms a title for the head and for scoring, nothing else costs: 5 fold heads and the final head on the
    # sample, the final model's fit check on the sample; the fold models still score their whole test folds
    t = Throughput(0.0, 0.001, 0.001, 0.0, 0.0, 20, 0.0)
    shape = Shape(n_rows=n_rows, n_splits=5, train_metrics=False, baseline=False, final_model=True)
    _, total = timeline(t, shape, n_rows, 5, 0, 0)
    cap = row_sample.LARGE_SET_ROWS
    from jobtitles.train.budget import FINISH_SECONDS
    assert total == pytest.approx(6 * cap * 0.001 + n_rows * 0.001 + cap * 0.001 + FINISH_SECONDS)
