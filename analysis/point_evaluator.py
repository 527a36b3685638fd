"""The interface shared by landscape evaluators: loss and accuracy at many points.

A point is ``theta + sum_k c_k d_k`` for a centre ``theta`` and directions
``d_k``; an evaluator turns a batch of coefficient vectors ``c`` into the mean
loss and accuracy over the evaluation data at each of them.
"""

from __future__ import annotations

import numpy as np
import torch

from . import metrics


class Evaluator:
    """Loss/accuracy at ``theta + sum_k c_k d_k`` for batches of coefficient vectors."""

    def __init__(self, model, centre, directions, X, y, batchnorm, memory_budget, *, loss_fn=None, accuracy_fn=None):
        self.model = model
        self.centre = centre
        self.directions = directions
        self.X, self.y = X, y
        self.n = X.shape[0]
        self.classification = metrics.is_classification(y)
        # a model's own loss (a LoadedModel's head: token losses, masked LM, ...) replaces Terrain's convention
        self.loss_fn = loss_fn
        self.accuracy_fn = accuracy_fn
        if loss_fn is not None:
            self.classification = accuracy_fn is not None and metrics.is_classification(y)
        self.batchnorm = batchnorm
        self.memory_budget = memory_budget

    def evaluate(self, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _reduce_custom(self, outputs: torch.Tensor, y: torch.Tensor) -> tuple[float, int, int]:
        """``(loss x weight, correct, weight)`` of one chunk at one point under the model's own loss.

        The weight is the accuracy's count (label tokens for a language model) when
        there is one, else the chunk's size, so chunked means equal the full-data mean.
        """
        loss = float(self.loss_fn(outputs, y))
        acc = self.accuracy_fn(outputs, y) if self.accuracy_fn is not None else None
        correct, weight = acc if acc is not None else (0, y.shape[0])
        return loss * weight, correct, weight

    def _reduce(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Summed loss and correct count per point for logits of shape (B, n, C)."""
        if self.classification:
            logp = torch.log_softmax(logits, dim=-1)
            yy = y.view(1, -1, 1).expand(logits.shape[0], -1, 1)
            loss = -logp.gather(2, yy).squeeze(2).sum(1)
            correct = (logits.argmax(-1) == y.view(1, -1)).sum(1)
            return loss, correct
        target = y if y.dim() == 2 else y[:, None]
        per = (logits - target.to(logits.dtype).unsqueeze(0)).pow(2).reshape(logits.shape[0], logits.shape[1], -1)
        return per.mean(2).sum(1), None
