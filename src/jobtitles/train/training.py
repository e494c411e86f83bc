"""One fine-tuning run with the transformers Trainer: fresh model, data, collator, optional weighted loss."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from datasets import Dataset
from torch.utils.data import SequentialSampler
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from jobtitles.core.activations import IndexedGroups, scores_from_logits
from jobtitles.core.cores import usable_cores
from jobtitles.core.embedded import resolve_model_path
from jobtitles.core.errors import UserError
from jobtitles.core.title_normalization import NONE, with_normalization
from jobtitles.train.gpu_settings import pad_multiple
from jobtitles.train.head_init import linear_probe_init
from jobtitles.core.log import logger
from jobtitles.train.losses import group_softmax_loss, pos_weight, weighted_bce_loss
from jobtitles.train.rare_labels import repeated_rows
from jobtitles.core.tokenization import dataset_length_order

PROBLEM_TYPE = "multi_label_classification"


def _load_error(model_name_or_path: str, what: str, err: Exception) -> UserError:
    return UserError(
        f"model_name_or_path {model_name_or_path!r}: cannot load {what} ({str(err).splitlines()[0]}); "
        "use 'embedded', a local model folder, or a Hub id with network access"
    )


def load_tokenizer(model_name_or_path: str, normalization: str = NONE) -> PreTrainedTokenizerBase:
    """The encoder's tokenizer, with the title normalisation every model of the run trains and is saved with."""
    path = resolve_model_path(model_name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise _load_error(model_name_or_path, "a tokenizer", err) from err
    if normalization != NONE and not getattr(tokenizer, "is_fast", False):
        raise UserError(f"title_normalization {normalization!r} needs a fast tokenizer (tokenizer.json), but "
                        f"{model_name_or_path!r} has a {type(tokenizer).__name__}; set title_normalization: none")
    return with_normalization(tokenizer, normalization)


def check_max_length(model_name_or_path: str, max_length: int) -> None:
    """max_length must fit the encoder's position embeddings; checked before any data is read."""
    try:
        config = AutoConfig.from_pretrained(resolve_model_path(model_name_or_path))
    except (OSError, ValueError) as err:
        raise _load_error(model_name_or_path, "a model config", err) from err
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise UserError(f"max_length {max_length} is longer than the model's {limit} positions "
                        f"(max_position_embeddings of {model_name_or_path!r}); set max_length to at most {limit}")


def build_model(model_name_or_path: str, labels: list[str], seed: int):
    """A fresh encoder with a new multi-label head; `seed` fixes the head's initialisation."""
    set_seed(seed)
    path = resolve_model_path(model_name_or_path)
    try:
        config = AutoConfig.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)}, problem_type=PROBLEM_TYPE,
        )
        # a checkpoint that already has a classification head of another size gets a fresh one (as run_classification.py)
        # fp32 master weights whatever the checkpoint's dtype (mixed precision is the Trainer's job)
        return AutoModelForSequenceClassification.from_pretrained(path, config=config, ignore_mismatched_sizes=True,
                                                                  dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise _load_error(model_name_or_path, "a model", err) from err


def fresh_model(model_name_or_path: str, labels: list[str], seed: int, head_init: str, probe_c: float,
                train_ds: Dataset, y_train: np.ndarray, tokenizer: PreTrainedTokenizerBase):
    """`build_model`, then (head_init='linear_probe') its head fitted on the training rows' frozen features."""
    model = build_model(model_name_or_path, labels, seed)
    if head_init == "linear_probe":
        start = time.perf_counter()
        model.to(PartialState().device)  # the probe's forward pass on the accelerator the Trainer will use
        rows = linear_probe_init(model, train_ds, y_train, tokenizer, probe_c, seed)
        fitted = len(train_ds) if rows == len(train_ds) else f"a stratified sample of {rows} of the {len(train_ds)}"
        logger.info(f"head: linear probe fitted on {fitted} titles in {time.perf_counter() - start:.1f} s")
    elif head_init != "random":
        raise UserError(f"head_init must be linear_probe or random, found {head_init!r}")
    return model


def cpu_threads(requested: int, local_processes: int) -> int:
    """Torch threads per process for CPU training: `requested`, or (0) this process's cores / local processes.

    `accelerate launch` without `--use_cpu` exports OMP_NUM_THREADS=1 when the variable is unset, which leaves
    all but one core idle (figures in docs/benchmarks.md)."""
    if requested > 0:
        return requested
    return max(1, usable_cores() // max(1, local_processes))


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), read from the CPU's own feature flags
    through torch; elsewhere bf16 is emulated and slower than fp32."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


@dataclasses.dataclass(frozen=True)
class Precision:
    """The arithmetic a run trains in, and why: shown in the log, run_info.json and the card."""

    name: str  # "bf16", "fp16" or "fp32"
    device: str  # "cuda" or "cpu"
    reason: str

    def flags(self) -> dict[str, bool]:
        """TrainingArguments fields: the Trainer (through accelerate) runs the forward pass under autocast."""
        flags = {"bf16": self.name == "bf16", "fp16": self.name == "fp16"}
        if self.device == "cpu" and self.name == "bf16":
            flags["use_cpu"] = True  # the Trainer allows bf16 without a GPU only on an explicit CPU run
        return flags


def resolve_precision(precision: str) -> Precision:
    """'auto' is bf16 where the hardware computes it natively (a recent GPU, or a CPU with AVX512-BF16/AMX), else
    fp32; 'fp32', 'bf16' and 'fp16' force it (fp16 only on a GPU)."""
    if torch.cuda.is_available():
        if precision == "auto":
            native = torch.cuda.is_bf16_supported()
            return Precision("bf16" if native else "fp32", "cuda",
                             "auto: the GPU supports bf16" if native else "auto: the GPU has no bf16")
        return Precision(precision, "cuda", f"precision: {precision}")
    if precision == "fp16":
        raise UserError("precision: fp16 needs a CUDA GPU and none was found; use precision: auto, bf16 or fp32")
    if precision == "auto":
        native = cpu_has_native_bf16()
        return Precision("bf16" if native else "fp32", "cpu",
                         "auto: the CPU has native bf16 (AVX512-BF16/AMX)" if native
                         else "auto: the CPU has no native bf16")
    if precision == "bf16" and not cpu_has_native_bf16():
        logger.warning("precision: bf16 on a CPU without native bf16 is emulated and usually slower than fp32")
    return Precision(precision, "cpu", f"precision: {precision}")


def epochs_for_budget(epochs: float, n_train: int, batch_per_step: int, min_steps: int) -> float:
    """At least `min_steps` optimizer steps: a few hundred titles at 4 epochs would get a few dozen steps, too
    few to fine-tune an encoder; sets large enough for `min_steps` keep the configured epochs."""
    steps_per_epoch = math.ceil(n_train / max(batch_per_step, 1))
    if min_steps <= 0 or epochs * steps_per_epoch >= min_steps:
        return epochs
    return float(math.ceil(min_steps / steps_per_epoch))


def titles_per_step(base: TrainingArguments) -> int:
    """Training titles per optimizer step, over every process."""
    return base.per_device_train_batch_size * base.gradient_accumulation_steps * max(base.world_size, 1)


def model_epochs(base: TrainingArguments, n_train: int, min_steps: int) -> float:
    """The epochs one model trains for on `n_train` rows (`epochs_for_budget` with the run's batch per step)."""
    return epochs_for_budget(base.num_train_epochs, n_train, titles_per_step(base), min_steps)


def run_args(base: TrainingArguments, output_dir: Path, precision: str, n_train: int | None = None,
             min_steps: int = 0, steps: int | None = None) -> TrainingArguments:
    """The user's TrainingArguments for one run: its own folder, no Hub pushes (the final model is pushed once),
    and (with `n_train`) enough epochs for `min_steps` optimizer steps unless max_steps is set; `steps`: exactly
    that many optimizer steps (a time budget's plan)."""
    flags = {} if (base.bf16 or base.fp16) else resolve_precision(precision).flags()
    if steps is not None:
        flags["max_steps"] = steps
    elif n_train is not None and base.max_steps <= 0:
        epochs = model_epochs(base, n_train, min_steps)
        if epochs != base.num_train_epochs:
            logger.info(f"{n_train} training titles: {epochs:g} epochs instead of {base.num_train_epochs:g} to reach "
                        f"min_train_steps={min_steps} optimizer steps")
            flags["num_train_epochs"] = epochs
    if not torch.cuda.is_available():
        flags["dataloader_pin_memory"] = False  # pinning needs an accelerator; avoids a warning per dataloader
    # Our BCE is a per-batch mean, not a token sum: the Trainer's multiply-by-world-size rescaling for
    # token-averaged losses would double the gradient in a 2-process run.
    flags["average_tokens_across_devices"] = False
    # trackers and the progress display are the run's callbacks (watch.py), not the Trainer's defaults
    return dataclasses.replace(base, output_dir=str(output_dir), push_to_hub=False, report_to="none", **flags)


class _Trainer(Trainer):
    def _get_eval_sampler(self, eval_dataset):
        # transformers 5 groups evaluation batches by length whenever training does, and predictions then come
        # back out of dataset order. Scores must line up with rows, so evaluation is sequential here (FoldRun
        # sorts by length itself and restores the order).
        if eval_dataset is None:
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def training_loss(y_train: np.ndarray, pos_weight_mode: str, softmax_groups: IndexedGroups | None):
    """The loss a model trains with (None: the model's own BCE): positive-class weights from its training rows,
    a softmax within the groups trained so."""
    weights = pos_weight(y_train, pos_weight_mode)
    if softmax_groups:
        return group_softmax_loss(softmax_groups, y_train.shape[1], weights)
    return weighted_bce_loss(weights) if weights is not None else None


class FoldRun:
    """Train one model on `train_ds`; score any split afterwards."""

    def __init__(self, model, args: TrainingArguments, train_ds: Dataset, tokenizer: PreTrainedTokenizerBase,
                 y_train: np.ndarray, pos_weight_mode: str, softmax_groups: IndexedGroups | None = None,
                 callbacks: list[TrainerCallback] | None = None, repeat_threshold: float = 0.0) -> None:
        if repeat_threshold > 0:  # rows of rare labels repeated in the training split (rare_labels.py)
            train_ds = train_ds.select(repeated_rows(y_train, repeat_threshold, args.seed))
        self.softmax_groups = softmax_groups or None
        loss = training_loss(y_train, pos_weight_mode, self.softmax_groups)
        self.trainer = _Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple()),
            processing_class=tokenizer,
            compute_loss_func=loss,
        )
        if callbacks is not None:  # the run's progress display replaces the Trainer's bar / printed log dicts
            for default in (ProgressCallback, PrinterCallback):
                self.trainer.remove_callback(default)
            for callback in callbacks:
                self.trainer.add_callback(callback)
        self.train_seconds = 0.0

    def train(self) -> None:
        start = time.perf_counter()
        self.trainer.train()
        self.train_seconds = time.perf_counter() - start

    def scores(self, ds: Dataset) -> np.ndarray:
        """Scores (n, n_labels) in the rows' order (sigmoids; softmax within groups trained so); gathered from all
        processes in distributed runs."""
        return self.score_pair(ds)[0]

    def score_pair(self, ds: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
        """The scores, and (only when groups were trained with a softmax) the sigmoid of every logit: what a plain
        transformers pipeline shows for the same rows.

        Rows are predicted sorted by length (little padding per batch), then put back in order."""
        order = dataset_length_order(ds)
        logits = self.trainer.predict(ds.select(order)).predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        out = np.empty_like(logits, dtype=np.float64)
        out[order] = scores_from_logits(logits, self.softmax_groups)
        if not self.softmax_groups:
            return out, None
        plain = np.empty_like(out)
        plain[order] = scores_from_logits(logits)
        return out, plain

    @property
    def steps(self) -> int:
        return int(self.trainer.state.global_step)

    def loss_history(self) -> list[dict[str, float]]:
        return [{"step": h["step"], "epoch": h.get("epoch"), "loss": h["loss"]}
                for h in self.trainer.state.log_history if "loss" in h]
