"""The interface shared by landscape evaluators: loss and accuracy at many points.

A point is ``theta + sum_k c_k d_k`` for a centre ``theta`` and directions
``d_k``; an evaluator turns a batch of coefficient vectors ``c`` into the mean
loss and accuracy over the evaluation data at each of them.

Loss and accuracy default to cross-entropy and argmax accuracy for integer
targets (per sample, averaged over any token positions) and mean squared error
for floating targets.  A caller may pass ``loss_fn(outputs, y)`` and
``accuracy_fn(outputs, y)`` instead (batch means, as a model source provides
them).  ``accuracy_fn`` returns either a fraction (a chunk of ``m`` samples then
counts ``m`` times its means) or ``(correct, count)`` (a :class:`LoadedModel`'s
head: the chunk's loss and accuracy then weigh ``count``, e.g. its label tokens,
so chunked means equal the full-data mean).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import metrics

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def model_output(out) -> torch.Tensor:
    """The prediction tensor of a forward pass (a tensor, a Hugging Face output's logits, or a tuple's first item)."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    return out[0]


class Evaluator:
    """Loss/accuracy at ``theta + sum_k c_k d_k`` for batches of coefficient vectors."""

    thread_safe = False  # may evaluate() run in several threads at once?

    def __init__(self, model, centre, directions, X, y, batchnorm, memory_budget, *, loss_fn: LossFn | None = None,
                 accuracy_fn: Callable | None = None):
        self.model = model
        self.centre = centre
        self.directions = directions
        self.X, self.y = X, y
        self.n = X.shape[0]
        self.classification = metrics.is_classification(y)
        self.batchnorm = batchnorm
        self.memory_budget = memory_budget
        # a model's own loss (a LoadedModel's head: token losses, masked LM, ...) replaces Terrain's convention
        self.loss_fn = loss_fn
        self.accuracy_fn = accuracy_fn
        self.has_accuracy = accuracy_fn is not None or (loss_fn is None and self.classification)

    def evaluate(self, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _score(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        """``(loss x weight, accuracy x weight, weight)`` (float64) of one point's outputs ``out`` on one chunk.

        The weight is the chunk's size, or the count an ``accuracy_fn`` returns with
        its correct answers (label tokens for a language model).
        """
        m = y.shape[0]
        if self.accuracy_fn is not None:
            acc = self.accuracy_fn(out, y)
            if isinstance(acc, tuple):
                correct, weight = acc
                correct, weight = torch.as_tensor(correct, dtype=torch.float64), float(weight)
            elif acc is None:
                correct, weight = torch.zeros((), dtype=torch.float64), float(m)
            else:
                correct, weight = torch.as_tensor(acc, dtype=torch.float64) * m, float(m)
        else:
            correct, weight = None, float(m)
        if self.loss_fn is not None:
            loss = torch.as_tensor(self.loss_fn(out, y)).to(torch.float64) * weight
        elif self.classification:
            # per sample: the mean over its positions (one position for plain classification)
            positions = y.numel() // max(1, m)
            flat = out.reshape(-1, out.shape[-1])
            loss = torch.nn.functional.cross_entropy(flat, y.reshape(-1), reduction="sum").to(torch.float64) / positions
        else:
            loss, _ = self._reduce(out.unsqueeze(0), y)
            loss = loss[0].to(torch.float64)
        if correct is None and self.has_accuracy:
            hits = (out.argmax(-1) == y).reshape(m, -1)
            correct = hits.sum() if hits.shape[1] == 1 else hits.to(torch.float64).mean(1).sum()
        return loss, correct, weight

    def _reduce_weighted(self, logits: torch.Tensor, y: torch.Tensor):
        """``(summed loss, summed accuracy | None, weight)`` per point for outputs of shape (B, n, ...)."""
        if self.loss_fn is not None or self.accuracy_fn is not None or (self.classification and y.dim() > 1):
            scores = [self._score(out, y) for out in logits]
            loss = torch.stack([s[0] for s in scores])
            correct = torch.stack([torch.as_tensor(s[1]) for s in scores]) if scores[0][1] is not None else None
            weight = torch.tensor([s[2] for s in scores], dtype=torch.float64, device=loss.device)
            return loss, correct, weight
        loss, correct = self._reduce(logits, y)
        return loss, correct, torch.full((logits.shape[0],), float(y.shape[0]), dtype=torch.float64, device=loss.device)

    def _reduce(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Summed loss and correct count per point for logits of shape (B, n, C) under Terrain's convention."""
        if self.classification and y.dim() > 1:
            scores = [self._score(out, y) for out in logits]
            loss = torch.stack([s[0] for s in scores])
            correct = torch.stack([s[1] for s in scores]) if scores[0][1] is not None else None
            return loss, correct
        if self.classification:
            logp = torch.log_softmax(logits, dim=-1)
            yy = y.view(1, -1, 1).expand(logits.shape[0], -1, 1)
            loss = -logp.gather(2, yy).squeeze(2).sum(1)
            correct = (logits.argmax(-1) == y.view(1, -1)).sum(1)
            return loss, correct
        target = y if y.dim() == 2 else y[:, None]
        per = (logits - target.to(logits.dtype).unsqueeze(0)).pow(2).reshape(logits.shape[0], logits.shape[1], -1)
        return per.mean(2).sum(1), None
