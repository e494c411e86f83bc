"""Shipping the uniform average of the fold models' and the final model's weights (`fold_average`): a model soup
(Wortsman et al., 2022) of models that share the pretrained start and the linear-probe head recipe, at no cost
at prediction time (one model, like the final one alone). Each fold model is saved with the Trainer's own
save_model (safetensors, main process only) under folds/fold_k/model, and the final model's own weights under
folds/final/model before the average replaces them, so the shipped weights can be rebuilt by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

from jobtitles.core.errors import UserError

FOLD_MODEL = "model"  # folds/fold_k/<this>: the fold model's weights (with fold_average)
FINAL_OWN = Path("folds") / "final" / FOLD_MODEL  # the final model's weights before the average
WEIGHTS = "model.safetensors"


def fold_model_dirs(run_dir: Path, n_splits: int) -> list[Path]:
    return [run_dir / "folds" / f"fold_{k}" / FOLD_MODEL for k in range(n_splits)]


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform mean of each floating-point tensor (summed in float32, cast back); integer buffers such as
    position ids must agree and are kept."""
    first = states[0]
    for k, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys():
            raise UserError(f"model {k} of the weight average has other tensors than model 0 "
                            f"({sorted(set(state) ^ set(first))[:3]}); the fold models are from another run: "
                            "train with --overwrite true")
    out = {}
    for name, ref in first.items():
        if ref.is_floating_point():
            out[name] = (sum(s[name].float() for s in states) / len(states)).to(ref.dtype)
        else:
            out[name] = ref
    return out


def average_into(model: torch.nn.Module, folders: Sequence[Path]) -> None:
    """Replace `model`'s weights by the uniform average of its own and the models saved in `folders`."""
    from safetensors.torch import load_file

    own = {k: v.detach() for k, v in model.state_dict().items()}
    saved = []
    for folder in folders:
        path = folder / WEIGHTS
        if not path.is_file():
            raise UserError(f"{path} not found: fold_average needs every fold model's weights; the fold was "
                            "trained without fold_average (resume): train again with --overwrite true")
        saved.append({k: v.to(next(iter(own.values())).device) for k, v in load_file(str(path)).items()})
    # tied or shared tensors are saved once by save_model: average the tensors the files hold
    names = [k for k in own if k in saved[0]] if saved else list(own)
    averaged = average_state_dicts([{k: own[k] for k in names}, *({k: s[k] for k in names} for s in saved)])
    model.load_state_dict(averaged, strict=False)
