"""What a run changes in its settings on a CUDA GPU, so the GPU is kept busy rather than waiting on per-step
overhead: a step of 32 ten-token titles is mostly Python, optimizer and kernel launches.

- The batch grows to `gpu_batch_size` (an integer multiple of the configured one), and with it the learning rate
  (`gpu_lr_scaling`: by the square root of the growth by default, the rule for Adam-type optimizers; validated on
  quality on the benchmark data, docs/benchmarks.md), while `min_train_steps` shrinks by the same factor: the
  model sees the same titles in fewer, larger steps, and the step rule (step_rule.py) follows the batch.
- Scoring runs in batches four times as large as training's.
- Batches are padded to a multiple of 8 tokens (tensor cores; fewer distinct shapes for `torch.compile`).
- TF32 matrix products for whatever still runs in fp32.

The fused AdamW is transformers' default already (`optim: adamw_torch_fused`); a CPU run changes nothing here.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from transformers import TrainingArguments
from transformers.utils import is_torch_tf32_available

from jobtitles.train.project_args import ProjectArgs

PAD_MULTIPLE = 8  # tensor-core tiles; the shapes of a run then repeat
EVAL_FACTOR = 4  # scoring keeps no gradients: batches this much larger than training's


@dataclasses.dataclass(frozen=True)
class GpuSettings:
    """The settings a CUDA run trains with, against the configured ones."""

    factor: int  # batch growth
    batch_size: int
    learning_rate: float
    min_train_steps: int
    warmup_steps: float
    eval_batch_size: int

    def line(self, before: TrainingArguments, min_steps: int) -> str:
        if self.factor == 1:
            return (f"GPU: batch {self.batch_size} as configured, scoring batch {self.eval_batch_size}, padding to a "
                    f"multiple of {PAD_MULTIPLE}")
        return (f"GPU: batch {before.per_device_train_batch_size} -> {self.batch_size} (x{self.factor}), learning "
                f"rate {before.learning_rate:g} -> {self.learning_rate:g}, min_train_steps {min_steps} -> "
                f"{self.min_train_steps}, scoring batch {self.eval_batch_size}, padding to a multiple of "
                f"{PAD_MULTIPLE} (gpu_batch_size: 0 keeps the configured batch)")


def gpu_settings(project: ProjectArgs, training: TrainingArguments) -> GpuSettings:
    m, batch = project.model, training.per_device_train_batch_size
    factor = max(1, m.gpu_batch_size // batch) if m.gpu_batch_size > 0 and training.max_steps <= 0 else 1
    scale = {"sqrt": math.sqrt(factor), "linear": float(factor), "none": 1.0}[m.gpu_lr_scaling]
    warmup = training.warmup_steps  # a fraction of the steps stays a fraction; a count shrinks with the steps
    return GpuSettings(
        factor=factor,
        batch_size=batch * factor,
        learning_rate=training.learning_rate * scale,
        min_train_steps=math.ceil(m.min_train_steps / factor),
        warmup_steps=warmup if warmup < 1 else float(math.ceil(warmup / factor)),
        eval_batch_size=max(training.per_device_eval_batch_size, EVAL_FACTOR * batch * factor),
    )


def on_gpu(project: ProjectArgs, training: TrainingArguments,
           cuda: bool | None = None) -> tuple[ProjectArgs, TrainingArguments, str | None]:
    """The run's settings for the device at hand (`cuda`: whether it is a CUDA GPU; default: ask torch) and the
    line that says what changed (None on a CPU)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda or training.use_cpu:
        return project, training, None
    s = gpu_settings(project, training)
    line = s.line(training, project.model.min_train_steps)
    training = dataclasses.replace(training, per_device_train_batch_size=s.batch_size, learning_rate=s.learning_rate,
                                   warmup_steps=s.warmup_steps, per_device_eval_batch_size=s.eval_batch_size,
                                   tf32=training.tf32 if training.tf32 is not None or not is_torch_tf32_available()
                                   else True)
    model = dataclasses.replace(project.model, min_train_steps=s.min_train_steps)
    return dataclasses.replace(project, model=model), training, line


def pad_multiple() -> int | None:
    """Token padding multiple for the data collators: 8 on a GPU, none on a CPU (where it only adds work)."""
    return PAD_MULTIPLE if torch.cuda.is_available() else None
