"""Weighted averaging of models with the same architecture.

Model soups (Wortsman et al. 2022, "Model soups: averaging weights of
multiple fine-tuned models improves accuracy without increasing inference
time") and the uniform average of Izmailov et al. (2018) are the special
case of equal weights.  Weights are normalised to sum to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .state_dicts import StateDict, check_compatible, mergeable

__all__ = ["weighted_average"]


def weighted_average(states: Sequence[StateDict], weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """``sum_i w_i theta_i / sum_i w_i`` per floating-point tensor (others copied from ``states[0]``)."""
    keys = check_compatible(states)
    if weights is None:
        weights = [1.0] * len(states)
    if len(weights) != len(states):
        raise ValueError(f"weights has {len(weights)} entries for {len(states)} models")
    total = float(sum(weights))
    if not total > 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    out = {}
    for key in keys:
        first = states[0][key]
        if not mergeable(first):
            out[key] = first.detach().clone()
            continue
        acc = torch.zeros(first.shape, dtype=torch.float64)
        for w, state in zip(weights, states):
            acc += (w / total) * state[key].detach().double()
        out[key] = acc.to(first.dtype)
    return out
