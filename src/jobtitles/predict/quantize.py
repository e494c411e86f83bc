"""int8 quantization of the ONNX export (static by default, dynamic on request), with accuracy-aware fallback.

Static (the default): ONNX Runtime's `quantize_static` stores the weights of the encoder's linear layers as int8
(per channel) and the activations entering them with fixed ranges measured on training titles (calibration,
MinMax). A title's scores are then a function of the title alone: dynamic quantization scales the activations
of each batch by that batch's range, so the same title scored beside other titles (another chunk, a Spark
partition, a server batch) could get other scores and, near a threshold, other labels.
Dynamic (`quantize_dynamic`): every MatMul/Gemm/Gather weight int8, activation ranges per batch; faster on some
CPUs (docs/benchmarks.md), answers depend on batch-mates.

For most models the label sets stay the same on >= 99.5% of titles; when they do not (titles whose scores sit
right at a threshold), the encoder layers whose quantization moves the decisions most are kept in fp32, one at a
time, until the agreement target is met on rows the choice was not made on. This is the accuracy-driven
fallback of Intel Neural Compressor and Optimum, reduced to what a 6-layer encoder needs: a greedy search over
whole layers.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

QUANTIZED_OPS = ("MatMul", "Gemm", "Gather")  # dynamic; static quantizes the weight-carrying MatMul/Gemm only
STATIC_OPS = ("MatMul", "Gemm")
_LAYER = re.compile(r"layers?[./_](\d+)[./]")


def node_groups(fp32: Path, ops: tuple[str, ...] = QUANTIZED_OPS) -> dict[str, list[str]]:
    """Weight-carrying nodes of `ops` (what quantize_dynamic quantizes by default), grouped by encoder layer
    ('layer 0', ...); the rest (embeddings, pooler, classifier) form 'embeddings' and 'head'."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    groups: dict[str, list[str]] = {}
    for node in graph.node:
        if node.op_type not in ops or not any(i in weights for i in node.input):
            continue
        match = _LAYER.search(node.name)
        key = f"layer {match.group(1)}" if match else ("embeddings" if "embedding" in node.name else "head")
        groups.setdefault(key, []).append(node.name)
    return groups


def quantize(fp32: Path, out: Path, exclude: list[str] | None = None,
             calibration: Sequence[dict] | None = None) -> Path:
    """int8 copy of `fp32` in `out`, `exclude` nodes left fp32: static with activation ranges from the
    `calibration` feeds (input name -> int64 array, padded batches as the model is run), dynamic without them."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from jobtitles.core.io_utils import atomic_path

    with atomic_path(out) as tmp, _quiet_root_logger():  # `out`: the earlier file or the new one, never half
        if calibration is not None:
            _quantize_static(fp32, tmp, list(exclude or []), calibration)
        else:
            # per-channel weight scales: closer label-set agreement with PyTorch than per-tensor (docs/benchmarks.md)
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=list(exclude or []))
    return out


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizers warn on the root logger about a pre-processing step (shape inference, graph optimisation)
    that this encoder's export does not need; the user would read it as something to do."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize_static(fp32: Path, out: Path, exclude: list[str], calibration: Sequence[dict]) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    # only the linear layers' inputs: the attention products (two activations) keep fp32, which keeps every
    # quantized input a per-token tensor, so a title's scores cannot depend on another title
    left_out = set(exclude)
    nodes = [n for group in node_groups(fp32, STATIC_OPS).values() for n in group if n not in left_out]
    quantize_static(str(fp32), str(out), Feeds(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(STATIC_OPS), nodes_to_quantize=nodes, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)


def accuracy_aware(fp32: Path, out: Path, same_rows: Callable[[], np.ndarray], target: float,
                   min_fp32_groups: int = 0, max_fp32_groups: int = 3, log: Callable[[str], None] = print,
                   calibration: Sequence[dict] | None = None) -> tuple[list[str], list[tuple[list[str], float, float]]]:
    """Quantize `fp32` into `out`; while agreement on the check rows or on all rows is below `target`, keep in fp32
    the layer whose fp32 copy raises agreement on the choice rows most. Choice rows: even positions; check: odd.

    `same_rows()` predicts every row with the current `out` file once and says, per row, whether its label set
    equals the reference's. Returns the groups kept in fp32 and every step as (kept groups, agreement on choice
    rows, agreement on check rows). `calibration`: static quantization's feeds (see `quantize`).
    """
    groups = node_groups(fp32, STATIC_OPS if calibration is not None else QUANTIZED_OPS)

    def nodes(names: list[str]) -> list[str]:
        return [n for g in names for n in groups[g]]

    def step(kept: list[str], same: np.ndarray) -> tuple[list[str], float, float]:
        return list(kept), float(np.mean(same[0::2])), float(np.mean(same[1::2]))

    def below(same: np.ndarray) -> bool:  # the held-out half, and all rows, must reach the target
        return min(float(np.mean(same[1::2])), float(np.mean(same))) < target

    quantize(fp32, out, calibration=calibration)
    same = same_rows()
    kept: list[str] = []
    steps = [step(kept, same)]
    while len(kept) < max_fp32_groups and (len(kept) < min_fp32_groups or below(same)):
        trials = []
        for g in groups:
            if g not in kept:
                quantize(fp32, out, nodes(kept + [g]), calibration)
                trial = same_rows()
                trials.append((float(np.mean(trial[0::2])), g, trial))
        if not trials:
            break
        _, best, same = max(trials, key=lambda t: (t[0], t[1]))
        kept.append(best)
        quantize(fp32, out, nodes(kept), calibration)  # leave the chosen model in place (the file holds the last trial)
        steps.append(step(kept, same))
        log(f"int8 fallback: keeping {', '.join(kept)} in fp32 -> agreement {steps[-1][1]:.2%} on the rows it was "
            f"chosen on, {steps[-1][2]:.2%} on the other half")
    return kept, steps
