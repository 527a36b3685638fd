"""Loss and accuracy shared by training, landscapes, curvature and connectivity.

The task is read off the targets: integer ``y`` means classification
(cross-entropy, accuracy), floating ``y`` means regression (mean squared error,
no accuracy).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["is_classification", "loss_fn_for", "loss_and_correct", "evaluate"]

EVAL_CHUNK = 8192


def is_classification(y: torch.Tensor) -> bool:
    return not y.is_floating_point()


def _regression_target(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dim() == 1 and out.dim() == 2 and out.shape[1] == 1:
        return y[:, None]
    return y


def loss_fn_for(y: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Mean loss function ``(outputs, y) -> scalar`` suited to targets ``y``."""
    if is_classification(y):
        return F.cross_entropy

    def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, _regression_target(out, target).to(out.dtype))

    return mse


def loss_and_correct(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Summed loss and number of correct predictions (None for regression) of one batch."""
    if is_classification(y):
        return F.cross_entropy(out, y, reduction="sum"), (out.argmax(-1) == y).sum()
    target = _regression_target(out, y).to(out.dtype)
    per = (out - target).pow(2).reshape(out.shape[0], -1).mean(1)
    return per.sum(), None


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``model`` on ``(X, y)``.

    The caller decides the mode (train/eval); this only runs forward passes.
    """
    n = X.shape[0]
    if n == 0:
        return float("nan"), None
    total = 0.0
    correct = 0
    cls = is_classification(y)
    for start in range(0, n, chunk):
        out = model(X[start : start + chunk])
        loss, corr = loss_and_correct(out, y[start : start + chunk])
        total += float(loss)
        if cls:
            correct += int(corr)
    return total / n, (correct / n if cls else None)
