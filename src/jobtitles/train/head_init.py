"""Linear-probe initialisation of the classification head, then full fine-tuning (LP-FT).

Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution" (ICLR 2022):
a randomly initialised head sends large, noisy gradients into the pretrained encoder during the first steps and
distorts its features before the head has learned anything. Fitting the head first on frozen features (here: one
scikit-learn logistic regression per label) and only then fine-tuning everything avoids that.

On job titles a random head left several labels of the benchmark data unlearned; the probe head did not
(docs/benchmarks.md, bench/ablation.py).

The head stays the architecture's own final `nn.Linear` (BertForSequenceClassification.classifier, DistilBERT's
classifier after pre_classifier, RoBERTa's out_proj, ...): the saved model is a plain transformers checkpoint that
`pipeline("text-classification")` loads without custom code.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from datasets import Dataset
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from jobtitles.core.errors import UserError
from jobtitles.train.row_sample import large_set_rows
from jobtitles.train.gpu_settings import pad_multiple
from jobtitles.core.tokenization import dataset_length_order

# Labels that no training row carries get a bias of logit(1e-4): predicted absent, as the data says.
_ABSENT_LOGIT = float(np.log(1e-4 / (1 - 1e-4)))


def output_layer(model: PreTrainedModel) -> torch.nn.Linear:
    """The last nn.Linear that maps to `num_labels` outputs: the layer the probe initialises."""
    n = model.config.num_labels
    found = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == n]
    if not found:
        raise UserError(
            f"head_init: linear_probe needs a final nn.Linear with {n} outputs in {type(model).__name__}, found none; "
            "set head_init: random for this architecture"
        )
    return found[-1]


@torch.inference_mode()
def head_inputs(model: PreTrainedModel, ds: Dataset, tokenizer: PreTrainedTokenizerBase,
                batch_size: int = 256) -> np.ndarray:
    """The frozen features the output layer sees (eval mode: no dropout), one row per dataset row, in order."""
    layer = output_layer(model)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach().float().cpu()))
    was_training = model.training
    model.eval()
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple())
    inputs = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in ds.column_names]
    order = dataset_length_order(ds)
    try:
        for start in range(0, len(ds), batch_size):
            rows = ds.select(order[start:start + batch_size]).select_columns(inputs)
            batch = collator([dict(r) for r in rows])
            model(**{k: v.to(model.device) for k, v in batch.items()})
    finally:
        hook.remove()
        model.train(was_training)
    feats = torch.cat(captured).numpy()
    out = np.empty_like(feats)
    out[order] = feats
    return out


def fit_probe(features: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One L2 logistic regression per label -> (weight (n_labels, dim), bias (n_labels,))."""
    n_labels = y.shape[1]
    weight = np.zeros((n_labels, features.shape[1]), dtype=np.float32)
    bias = np.full(n_labels, _ABSENT_LOGIT, dtype=np.float32)
    for j in range(n_labels):
        target = y[:, j].astype(int)
        if target.min() == target.max():  # one class only: a constant logit, no fit possible
            bias[j] = _ABSENT_LOGIT if target.max() == 0 else -_ABSENT_LOGIT
            continue
        with warnings.catch_warnings():
            # a probe that stops early is still a far better start than a random head
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(features, target)
        weight[j], bias[j] = clf.coef_[0], clf.intercept_[0]
    return weight, bias


def linear_probe_init(model: PreTrainedModel, ds: Dataset, y: np.ndarray, tokenizer: PreTrainedTokenizerBase,
                      c: float, seed: int) -> int:
    """Set the output layer to a logistic-regression probe fitted on `ds` (the fold's training rows only; of a
    large set, a stratified sample with every row of its rare labels: the head is a starting point). Returns the
    rows it was fitted on."""
    rows = large_set_rows(y, seed)
    if rows is not None:
        ds, y = ds.select(rows), y[rows]
    feats = head_inputs(model, ds, tokenizer)
    weight, bias = fit_probe(feats, y, c, seed)
    layer = output_layer(model)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    return len(y)
