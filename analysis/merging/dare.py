"""DARE: drop and rescale task vectors before merging.

Yu et al. (2024), "Language Models are Super Mario: Absorbing Abilities from
Homologous Models as a Free Lunch" (ICML): each entry of each task vector is
dropped with probability ``p`` and the survivors are rescaled by ``1/(1-p)``,
so the expected task vector is unchanged; the sparse vectors are then
combined by task arithmetic (or TIES).  Seeded: one ``torch.Generator`` per
call, so the same seed gives the same masks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .state_dicts import StateDict, add_scaled, task_vectors
from .ties import ties_combine

__all__ = ["drop_and_rescale", "dare_merge"]


def drop_and_rescale(delta: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop probability p must be in [0, 1), got {p}")
    if p == 0.0:
        return delta.clone()
    keep = torch.rand(delta.shape, generator=generator, dtype=torch.float64) >= p
    return torch.where(keep, delta / (1.0 - p), torch.zeros_like(delta))


def dare_merge(
    base: StateDict,
    models: Sequence[StateDict],
    p: float = 0.5,
    lam: float = 1.0,
    *,
    seed: int = 0,
    combine: str = "task_arithmetic",
    density: float = 1.0,
) -> dict[str, torch.Tensor]:
    """``base + lam * combine(DARE(tau_i))``; ``combine`` is ``task_arithmetic`` (sum) or ``ties``."""
    if not models:
        raise ValueError("DARE needs at least one fine-tuned model")
    generator = torch.Generator().manual_seed(int(seed))
    vectors = [{k: drop_and_rescale(v, p, generator) for k, v in tv.items()} for tv in task_vectors(base, models)]
    if combine == "task_arithmetic":
        merged = {k: sum(v[k] for v in vectors) for k in vectors[0]}
    elif combine == "ties":
        merged = ties_combine(vectors, density)
    else:
        raise ValueError(f"combine must be 'task_arithmetic' or 'ties', got {combine!r}")
    return add_scaled(base, merged, lam)
