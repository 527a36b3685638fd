"""TIES-merging: trim, elect sign, disjoint merge.

Yadav et al. (2023), "TIES-Merging: Resolving Interference When Merging
Models" (NeurIPS):

1. *Trim*: keep the ``density`` fraction of each task vector's entries with
   the largest magnitude, zero the rest (per tensor, as mergekit does, so one
   large layer cannot take the whole budget).
2. *Elect*: per entry, the sign of the summed trimmed values (the sign with
   the larger total magnitude).
3. *Disjoint merge*: per entry, the mean over the task vectors whose trimmed
   value is non-zero and agrees with the elected sign.

The merged model is ``base + lam * tau_merged``.  With no trimming and task
vectors that never overlap, the disjoint mean of each entry is its only
value, so TIES equals the plain sum of the task vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .state_dicts import StateDict, add_scaled, task_vectors

__all__ = ["trim_top_magnitude", "ties_merge", "ties_combine"]


def trim_top_magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``ceil(density * numel)`` largest-magnitude entries of ``delta``."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if density >= 1.0 or delta.numel() == 0:
        return delta.clone()
    keep = max(1, int(round(density * delta.numel())))
    flat = delta.reshape(-1)
    threshold = flat.abs().kthvalue(flat.numel() - keep + 1).values
    return torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))


def ties_combine(vectors: Sequence[dict[str, torch.Tensor]], density: float) -> dict[str, torch.Tensor]:
    """Trim, elect and disjoint-merge task vectors into one."""
    merged = {}
    for key in vectors[0]:
        stacked = torch.stack([trim_top_magnitude(v[key], density) for v in vectors])
        elected = torch.sign(stacked.sum(0))
        agrees = (torch.sign(stacked) == elected) & (stacked != 0)
        count = agrees.sum(0)
        total = (stacked * agrees).sum(0)
        merged[key] = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return merged


def ties_merge(base: StateDict, models: Sequence[StateDict], density: float = 0.2, lam: float = 1.0) -> dict[str, torch.Tensor]:
    """``base + lam * TIES(task vectors)``; ``density`` is the fraction of each task vector kept."""
    if not models:
        raise ValueError("TIES needs at least one fine-tuned model")
    return add_scaled(base, ties_combine(task_vectors(base, models), density), lam)
