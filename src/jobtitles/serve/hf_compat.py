"""The Hugging Face text-classification output: [{"label", "score"}, ...] best first, with the API's optional
top_k and function_to_apply (the model's own scores are sigmoids; softmax and none are computed from the logits
they came from)."""

from __future__ import annotations

import numpy as np


def hf_scores(scores: dict[str, float], top_k: int | None, function_to_apply: str | None) -> list[dict]:
    labels = list(scores)
    values = np.array([scores[lab] for lab in labels], dtype=np.float64)
    if function_to_apply in ("softmax", "none"):
        probs = np.clip(values, 1e-12, 1 - 1e-12)
        logits = np.log(probs / (1 - probs))
        if function_to_apply == "none":
            values = logits
        else:
            exp = np.exp(logits - logits.max())
            values = exp / exp.sum()
    order = np.argsort(-values, kind="stable")[: top_k or len(labels)]
    return [{"label": labels[i], "score": float(values[i])} for i in order]
