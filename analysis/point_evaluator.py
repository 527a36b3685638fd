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

    def __init__(self, model, centre, directions, X, y, batchnorm, memory_budget):
        self.model = model
        self.centre = centre
        self.directions = directions
        self.X, self.y = X, y
        self.n = X.shape[0]
        self.classification = metrics.is_classification(y)
        self.batchnorm = batchnorm
        self.memory_budget = memory_budget

    def evaluate(self, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

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
