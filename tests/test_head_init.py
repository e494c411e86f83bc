"""Linear-probe head initialisation (LP-FT): the probe is fitted on the right features and really lands in the head."""

from __future__ import annotations

import numpy as np
import torch

from jobtitles.core.data import load_labeled_csv
from jobtitles.core.tokenization import training_dataset
from jobtitles.train.head_init import _ABSENT_LOGIT, fit_probe, head_inputs, linear_probe_init, output_layer
from jobtitles.train.training import build_model, load_tokenizer


def test_fit_probe_separates_separable_labels_and_handles_constant_ones():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0.5, np.zeros(200, bool), np.ones(200, bool)], axis=1)
    weight, bias = fit_probe(x, y.astype(np.float32), c=100.0, seed=0)
    pred = (x @ weight.T + bias) > 0
    assert (pred[:, :2] == y[:, :2]).mean() > 0.97
    # label 0 depends on feature 0 only: its weight dominates the other features'
    assert abs(weight[0, 0]) > 5 * np.abs(weight[0, 1:]).max()
    # a label no row carries is predicted absent; one every row carries, present
    assert np.all(weight[2:] == 0) and bias[2] == _ABSENT_LOGIT and bias[3] == -_ABSENT_LOGIT


def _tiny(tiny_csv, tiny_model_dir):
    data = load_labeled_csv(tiny_csv)
    tok = load_tokenizer(str(tiny_model_dir))
    ds = training_dataset(data.titles, data.y, data.rows, tok, 16)
    return data, tok, ds


def test_probe_weights_are_the_model_head(tiny_csv, tiny_model_dir):
    data, tok, ds = _tiny(tiny_csv, tiny_model_dir)
    model = build_model(str(tiny_model_dir), data.labels, seed=0)
    layer = output_layer(model)
    assert layer is model.classifier  # DistilBERT: the final Linear, after pre_classifier
    before = layer.weight.detach().clone()
    linear_probe_init(model, ds, data.y, tok, c=10.0, seed=0)
    assert not torch.equal(before, layer.weight)

    # the model's logits are now exactly the probe's logits on the frozen features, row by row
    feats = head_inputs(model, ds, tok)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    model.eval()
    with torch.no_grad():
        enc = tok(data.titles[:7], padding=True, return_tensors="pt")
        logits = model(**enc).logits.numpy()
    np.testing.assert_allclose(logits, feats[:7] @ weight.T + bias, rtol=1e-4, atol=1e-4)

    # and the probe learned the training labels: an all-zero (or any constant) head ranks titles at chance, ROC-AUC
    # 0.5, on every label; the probe must rank each frequent label's titles well above that (the random tiny
    # encoder's features vary little, so the margin is modest)
    from sklearn.metrics import roc_auc_score

    logits = feats @ weight.T + bias
    frequent = [j for j in range(len(data.labels)) if data.y[:, j].sum() >= 10]
    aucs = [roc_auc_score(data.y[:, j], logits[:, j]) for j in frequent]
    assert len(frequent) == 5 and min(aucs) > 0.7, aucs


def test_head_inputs_keep_row_order(tiny_csv, tiny_model_dir):
    data, tok, ds = _tiny(tiny_csv, tiny_model_dir)
    model = build_model(str(tiny_model_dir), data.labels, seed=0)
    feats = head_inputs(model, ds, tok, batch_size=4)  # length-sorted batches inside, rows back in order
    one_by_one = np.concatenate([head_inputs(model, ds.select([i]), tok) for i in (0, 5, 40)])
    np.testing.assert_allclose(feats[[0, 5, 40]], one_by_one, rtol=1e-4, atol=1e-5)
