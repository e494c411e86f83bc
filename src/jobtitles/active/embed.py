"""Title embeddings for the diversity of a suggested batch: the mean of the encoder's last hidden states over a
title's tokens, L2-normalised. The fine-tuned model's own encoder when there is a model (titles it sees alike
land together), the embedded all-MiniLM-L6-v2 for a cold start (a sentence encoder: alike in meaning)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jobtitles.core.tokenization import length_order


def embed(encoder, tokenizer, titles: Sequence[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """(n, hidden) L2-normalised mean-pooled embeddings; `encoder` a transformers base model (no head)."""
    import torch

    enc = tokenizer(list(titles), truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    order = length_order([len(ids) for ids in enc["input_ids"]])
    out: np.ndarray | None = None
    device = next(encoder.parameters()).device
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer.pad([{k: enc[k][i] for k in keys} for i in idx], return_tensors="pt")
        with torch.inference_mode():
            hidden = encoder(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state.float()
        mask = batch["attention_mask"].to(device).unsqueeze(-1).float()
        pooled = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
        if out is None:
            out = np.zeros((len(titles), pooled.shape[1]), dtype=np.float32)
        out[idx] = pooled
    assert out is not None
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def embedded_encoder():
    """(encoder, tokenizer) of the embedded default encoder, its weights' SHA-256 checked; safetensors only."""
    from transformers import AutoModel, AutoTokenizer

    from jobtitles.core.embedded import embedded_model_dir, verify_weights
    from jobtitles.core.model_folder import quiet_loading

    folder = embedded_model_dir()
    verify_weights(folder)
    with quiet_loading():
        encoder = AutoModel.from_pretrained(str(folder), use_safetensors=True, trust_remote_code=False).eval()
    return encoder, AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
