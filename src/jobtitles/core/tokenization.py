"""LabeledData -> datasets.Dataset, tokenized once (batched map, no padding: the collator pads per batch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # datasets is imported where a Dataset is built: prediction only needs length_order
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

from jobtitles.core.log import warn


def length_order(lengths: Sequence[int]) -> np.ndarray:
    """Row order by token count, for batches of similar lengths (little padding); stable, so ties keep their
    input order. Used by training, the linear probe and prediction; callers restore the input order."""
    return np.argsort(np.asarray(lengths), kind="stable")


def dataset_length_order(ds: "Dataset") -> np.ndarray:
    return length_order(ds["length"]) if "length" in ds.column_names else np.arange(len(ds))


def build_dataset(titles: list[str], y: np.ndarray | None, rows: list[int]) -> "Dataset":
    from datasets import Dataset, Features, Sequence as DsSequence, Value

    columns: dict = {"text": titles, "row": rows}
    features = {"text": Value("string"), "row": Value("int64")}
    if y is not None:
        columns["labels"] = y.astype(np.float32)
        features["labels"] = DsSequence(Value("float32"))  # BCEWithLogits wants float targets
    return Dataset.from_dict(columns, features=Features(features))


def tokenize_dataset(ds: "Dataset", tokenizer: "PreTrainedTokenizerBase", max_length: int, num_proc: int | None = None,
                     pad_to_max_length: bool = False) -> "Dataset":
    """Add input_ids/attention_mask and a `length` column (used by group_by_length sampling).

    No padding by default: DataCollatorWithPadding pads each batch to its longest title."""
    padding = "max_length" if pad_to_max_length else False

    def encode(batch: dict) -> dict:
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length, padding=padding)
        enc["length"] = [sum(mask) for mask in enc["attention_mask"]]
        return enc

    out = ds.map(encode, batched=True, batch_size=2000, num_proc=num_proc, desc="tokenizing",
                 keep_in_memory=True)
    truncated = int(np.sum(np.asarray(out["length"]) >= max_length))
    if truncated:
        warn(f"{truncated} titles reached max_length={max_length} tokens and were truncated; "
             "raise `max_length` if their ends matter")
    return out


def model_columns(ds: "Dataset") -> "Dataset":
    """Only what the model and collator consume (the Trainer would otherwise drop text/row itself)."""
    keep = [c for c in ("input_ids", "attention_mask", "token_type_ids", "labels", "length") if c in ds.column_names]
    return ds.select_columns(keep)


def training_dataset(titles: list[str], y: np.ndarray, rows: list[int], tokenizer: "PreTrainedTokenizerBase",
                     max_length: int, pad_to_max_length: bool = False) -> "Dataset":
    """Titles and targets as the Trainer takes them: built, tokenized once, reduced to the model's columns."""
    return model_columns(tokenize_dataset(build_dataset(titles, y, rows), tokenizer, max_length,
                                          pad_to_max_length=pad_to_max_length))
