"""The Hugging Face text-classification output: [{"label", "score"}, ...] best first, with the API's optional
top_k and function_to_apply (the model's own scores are sigmoids; softmax and none are computed from the logits
they came from)."""

from __future__ import annotations

import numpy as np
from scipy.special import logit, softmax


def hf_scores(scores: dict[str, float], top_k: int | None, function_to_apply: str | None) -> list[dict]:
    labels = list(scores)
    values = np.array([scores[lab] for lab in labels], dtype=np.float64)
    if function_to_apply in ("softmax", "none"):
        logits = logit(np.clip(values, 1e-12, 1 - 1e-12))
        values = logits if function_to_apply == "none" else softmax(logits)
    order = np.argsort(-values, kind="stable")[: top_k or len(labels)]
    return [{"label": labels[i], "score": float(values[i])} for i in order]
