"""What every model source produces: a :class:`LoadedModel`.

A loaded model is a plain ``nn.Module`` whose ``forward(X)`` takes one tensor
batch (images ``(N, C, H, W)``, features ``(N, F)`` or token ids ``(N, T)``)
and returns outputs, plus the loss and accuracy that go with its head, what
kind of input it wants and where it came from.  Analysis functions
(:mod:`analysis.landscape`, :mod:`analysis.curvature`,
:mod:`analysis.connectivity`) accept one wherever they accept a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LoadedModel",
    "SourceError",
    "IGNORE_INDEX",
    "classification_loss",
    "classification_accuracy",
    "causal_lm_loss",
    "causal_lm_accuracy",
    "masked_lm_loss",
    "masked_lm_accuracy",
    "builtin_loss",
    "builtin_accuracy",
    "unwrap",
]

IGNORE_INDEX = -100  # label value that takes no part in a token loss (padding, unmasked positions)


class SourceError(ValueError):
    """A model or data file cannot be used; the message names the file and field and says what to upload instead."""

    def __init__(self, message: str, *, field: str = "checkpoint"):
        super().__init__(message)
        self.field = field


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AccuracyFn = Callable[[torch.Tensor, torch.Tensor], "tuple[int, int] | None"]


@dataclass
class LoadedModel:
    module: nn.Module
    loss_fn: LossFn
    accuracy_fn: AccuracyFn
    input_kind: str  # "images" | "tokens" | "features"
    provenance: dict = field(default_factory=dict)
    differentiable: bool = True

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def state(self) -> dict[str, torch.Tensor]:
        """Detached clones of the parameters (tied weights appear once)."""
        return {n: p.detach().clone() for n, p in self.module.named_parameters()}


# --------------------------------------------------------------------------- losses


def builtin_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Terrain's convention: cross-entropy for integer targets, mean squared error for float ones."""
    from .. import metrics

    return metrics.loss_fn_for(y)(outputs, y)


def builtin_accuracy(outputs: torch.Tensor, y: torch.Tensor) -> tuple[int, int] | None:
    if y.is_floating_point():
        return None
    return classification_accuracy(outputs, y)


def unwrap(model, loss_fn: LossFn | None = None, accuracy_fn: AccuracyFn | None = None):
    """``(module, loss_fn, accuracy_fn)`` of a model, a LoadedModel or a Checkpoint.

    The loss/accuracy come back as ``None`` when they are Terrain's built-in
    convention, so callers keep their fast paths for zoo models.
    """
    if isinstance(model, LoadedModel):
        if loss_fn is None and model.loss_fn is not builtin_loss:
            loss_fn = model.loss_fn
        if accuracy_fn is None and model.accuracy_fn is not builtin_accuracy:
            accuracy_fn = model.accuracy_fn
        model = model.module
    elif not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module):  # a Checkpoint
        model = model.model
    return model, loss_fn, accuracy_fn


def classification_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, y)


def classification_accuracy(outputs: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    return int((outputs.argmax(-1) == y).sum()), int(y.shape[0])


def _shifted(outputs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Position t predicts token t+1: drop the last logit and the first label."""
    return outputs[:, :-1, :].reshape(-1, outputs.shape[-1]), y[:, 1:].reshape(-1)


def causal_lm_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, labels = _shifted(outputs, y)
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def _token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    keep = labels != IGNORE_INDEX
    return int((logits.argmax(-1)[keep] == labels[keep]).sum()), int(keep.sum())


def causal_lm_accuracy(outputs: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    return _token_accuracy(*_shifted(outputs, y))


def masked_lm_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1), ignore_index=IGNORE_INDEX)


def masked_lm_accuracy(outputs: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    return _token_accuracy(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1))
