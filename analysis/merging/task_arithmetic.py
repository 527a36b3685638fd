"""Task arithmetic: add scaled task vectors to a base model.

Ilharco et al. (2023), "Editing models with task arithmetic" (ICLR): a task
vector is ``tau_i = theta_i - theta_base``; the merged model is
``theta_base + lambda * sum_i tau_i``.  ``lambda`` is the main knob: 0 gives
the base, 1/n the plain average of the fine-tunes, 1 the full sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .state_dicts import StateDict, add_scaled, task_vectors

__all__ = ["task_arithmetic", "summed_task_vector"]


def summed_task_vector(base: StateDict, models: Sequence[StateDict]) -> dict[str, torch.Tensor]:
    vectors = task_vectors(base, models)
    return {k: sum(v[k] for v in vectors) for k in vectors[0]} if vectors else {}


def task_arithmetic(base: StateDict, models: Sequence[StateDict], lam: float = 1.0) -> dict[str, torch.Tensor]:
    """``base + lam * sum_i (model_i - base)``."""
    if not models:
        raise ValueError("task arithmetic needs at least one fine-tuned model")
    return add_scaled(base, summed_task_vector(base, models), lam)
