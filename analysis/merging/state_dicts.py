"""Plain state dicts (name -> tensor) as the currency of every merge method.

Merging works on any model source (zoo checkpoints, Hugging Face folders,
LoRA-merged weights, ONNX initializers) because it only sees name -> tensor
mappings.  Floating-point tensors are merged; the rest (BatchNorm's
``num_batches_tracked``, integer buffers) are copied from the first model,
since an average of counters or indices means nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

StateDict = Mapping[str, torch.Tensor]

__all__ = ["StateDict", "check_compatible", "task_vectors", "add_scaled", "mergeable"]


def mergeable(tensor: torch.Tensor) -> bool:
    return torch.is_floating_point(tensor)


def check_compatible(states: Sequence[StateDict], what: str = "models") -> list[str]:
    """The shared key order; raises ValueError naming the first key or shape that differs."""
    if not states:
        raise ValueError(f"no {what} to merge")
    keys = list(states[0].keys())
    for i, state in enumerate(states[1:], start=1):
        if set(state.keys()) != set(keys):
            missing = sorted(set(keys) ^ set(state.keys()))
            raise ValueError(f"{what}[{i}] has different tensors from {what}[0] (first difference: {missing[0]!r})")
        for key in keys:
            if tuple(state[key].shape) != tuple(states[0][key].shape):
                raise ValueError(
                    f"{what}[{i}] tensor {key!r} has shape {tuple(state[key].shape)}, "
                    f"{what}[0] has {tuple(states[0][key].shape)}"
                )
    return keys


def task_vectors(base: StateDict, models: Sequence[StateDict]) -> list[dict[str, torch.Tensor]]:
    """``model - base`` per floating-point tensor, in float64 (Ilharco et al. 2023)."""
    check_compatible([base, *models])
    return [
        {k: m[k].detach().double() - base[k].detach().double() for k in base if mergeable(base[k])} for m in models
    ]


def add_scaled(base: StateDict, delta: Mapping[str, torch.Tensor], scale: float = 1.0) -> dict[str, torch.Tensor]:
    """``base + scale * delta`` in the base's dtypes; tensors without a delta are copied."""
    out = {}
    for key, tensor in base.items():
        if key in delta:
            out[key] = (tensor.detach().double() + scale * delta[key]).to(tensor.dtype)
        else:
            out[key] = tensor.detach().clone()
    return out
