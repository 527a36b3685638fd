"""Choosing and running a landscape evaluator: loss and accuracy at points ``theta + sum_k c_k d_k``.

Three evaluators share :class:`analysis.point_evaluator.Evaluator`:

- :class:`analysis.mlp_evaluator.MLPEvaluator` for zoo MLPs (first layer once per plane,
  second layer shared along grid rows),
- :class:`analysis.generic_evaluator.PointEvaluator` for any other model on a CPU (one point
  at a time, no allocation per point, first layer once per plane),
- :class:`BatchedEvaluator` (``vmap`` over stacked points) on CUDA, where batching points pays,
  and for ``batchnorm="recompute"``.

``point_batching`` overrides the choice per device: ``"auto"``, ``"points"`` (one by one) or
``"batched"`` (the GPU path, also runnable on a CPU to check it).
"""

from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .directions import _as_param_dict, _params_of
from .generic_evaluator import PointEvaluator
from .mlp_evaluator import MLPEvaluator
from .point_evaluator import Evaluator, LossFn, model_output
from .sources.base import unwrap

DEFAULT_MEMORY_BUDGET = 16 * 2**20  # bytes of activations per evaluation batch (small chunks stay in cache)
POINT_BATCHING = ("auto", "points", "batched")


class BatchedEvaluator(Evaluator):
    """Any model: ``vmap`` of ``functional_call`` over stacked parameter sets (or a plain loop).

    The path for GPUs, where batching points is where the win is (data stays resident on the
    device), and for ``batchnorm="recompute"`` (one point at a time on re-estimated buffers).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffers = {n: b.detach() for n, b in self.model.named_buffers()}
        self.names = list(self.centre)
        self.use_vmap = self.batchnorm == "keep"
        numel = sum(p.numel() for p in self.centre.values())
        self.param_bytes = numel * next(iter(self.centre.values())).element_size()
        with torch.no_grad():
            probe = self.X[:2]
            out = model_output(torch.func.functional_call(self.model, (self.centre, self.buffers), (probe,)))
        self.out_width = out.shape[-1]

    def _params(self, C: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for n in self.names:
            stacked = torch.stack([self.centre[n]] + [d[n] for d in self.directions])  # (K+1, ...)
            out[n] = (C @ stacked.reshape(stacked.shape[0], -1)).reshape(C.shape[0], *stacked.shape[1:])
        return out

    def _forward_batched(self, params, X):
        def f(p):
            return model_output(torch.func.functional_call(self.model, (p, self.buffers), (X,)))

        return torch.func.vmap(f)(params)

    def _recompute_bn(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        buffers = {n: b.clone() for n, b in self.buffers.items()}
        bns = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [(m, m.momentum, m.training) for m in bns]
        for name, b in buffers.items():
            if name.endswith("running_mean"):
                b.zero_()
            elif name.endswith("running_var"):
                b.fill_(1.0)
            elif name.endswith("num_batches_tracked"):
                b.zero_()
        try:
            for m in bns:
                m.momentum = None  # cumulative average over the chunks
                m.train()
            chunk = 4096
            for start in range(0, self.n, chunk):
                torch.func.functional_call(self.model, (p, buffers), (self.X[start : start + chunk],))
        finally:
            for m, mom, training in saved:
                m.momentum = mom
                m.train(training)
        return buffers

    def evaluate(self, coefs: np.ndarray):
        B = coefs.shape[0]
        dtype = next(iter(self.centre.values())).dtype
        dev = self.X.device
        C = torch.as_tensor(np.concatenate([np.ones((B, 1)), coefs], axis=1), dtype=dtype, device=dev)
        total = torch.zeros(B, dtype=torch.float64, device=dev)
        correct = torch.zeros(B, dtype=torch.float64, device=dev)
        weight = torch.zeros(B, dtype=torch.float64, device=dev)
        if self.use_vmap:
            params = self._params(C)
            # activations of a batch are unknown in general: budget on inputs x outputs as a proxy
            per_sample = max(self.X[0].numel(), self.out_width) * 4 * 64
            chunk = max(1, min(self.n, self.memory_budget // max(1, B * per_sample)))
            for start in range(0, self.n, chunk):
                Xc, yc = self.X[start : start + chunk], self.y[start : start + chunk]
                try:
                    logits = self._forward_batched(params, Xc)
                except RuntimeError:
                    self.use_vmap = False  # an op without a batching rule: fall back to the loop
                    return self.evaluate(coefs)
                loss, corr, w = self._reduce_weighted(logits, yc)
                total += loss.to(torch.float64)
                weight += w
                if corr is not None:
                    correct += corr
        else:
            for b in range(B):
                p = self._params(C[b : b + 1])
                p = {n: t[0] for n, t in p.items()}
                buffers = self._recompute_bn(p) if self.batchnorm == "recompute" else self.buffers
                for start in range(0, self.n, 4096):
                    Xc, yc = self.X[start : start + 4096], self.y[start : start + 4096]
                    out = model_output(torch.func.functional_call(self.model, (p, buffers), (Xc,)))
                    loss, corr, w = self._reduce_weighted(out.unsqueeze(0), yc)
                    total[b] += loss[0].to(torch.float64)
                    weight[b] += w[0]
                    if corr is not None:
                        correct[b] += corr[0]
        losses = (total / weight).cpu().numpy()
        acc = (correct.to(torch.float64) / weight).cpu().numpy() if self.has_accuracy else None
        return losses, acc


def make_evaluator(model, centre, directions, X, y, batchnorm, memory_budget, fast=True, *, loss_fn: LossFn | None = None,
                   accuracy_fn: LossFn | None = None, point_batching: str = "auto") -> Evaluator:
    if point_batching not in POINT_BATCHING:
        raise ValueError(f"point_batching must be one of {POINT_BATCHING}, got {point_batching!r}")
    args = (model, centre, directions, X, y, batchnorm, memory_budget)
    scoring = {"loss_fn": loss_fn, "accuracy_fn": accuracy_fn}
    batched = point_batching == "batched" or (point_batching == "auto" and X.device.type == "cuda")
    if fast and not batched and loss_fn is None and accuracy_fn is None and MLPEvaluator.supports(model, batchnorm):
        return MLPEvaluator(*args)
    if fast and not batched and PointEvaluator.supports(batchnorm):
        return PointEvaluator(*args, **scoring)
    return BatchedEvaluator(*args, **scoring)


_make_evaluator = make_evaluator  # the name used before the split


def batch_size_for(ev: Evaluator) -> int:
    if isinstance(ev, MLPEvaluator):
        # whole grid rows, so points along a row can share products (see analysis.mlp_evaluator); several
        # per thread, so whole rows balance between threads (64 put three 41-point rows on two threads)
        return 128
    if isinstance(ev, BatchedEvaluator):
        return 8 if ev.use_vmap else 1
    return 16  # one point at a time, but batches of several points can be shared between threads


def prepare(model: nn.Module, data, device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model, _, _ = unwrap(model)  # a Checkpoint or a LoadedModel
    work = copy.deepcopy(model).eval()
    if device is not None:
        work = work.to(device)
    for p in work.parameters():
        p.requires_grad_(False)
    X, y = data
    dev = next(work.parameters()).device
    return work, X.to(dev), y.to(dev)


def evaluate_points(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    directions: Sequence[Mapping[str, torch.Tensor]],
    coefs: np.ndarray,
    *,
    centre: Mapping[str, torch.Tensor] | None = None,
    batchnorm: str = "keep",
    batch_size: int | None = None,
    fast: bool = True,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    loss_fn: LossFn | None = None,
    accuracy_fn: LossFn | None = None,
    point_batching: str = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Loss and accuracy at ``centre + sum_k coefs[:, k] * directions[k]`` for each row of ``coefs``.

    ``model`` may be a :class:`analysis.sources.LoadedModel`, whose loss and accuracy are then used
    (``loss_fn(outputs, y) -> mean loss``, ``accuracy_fn(outputs, y) -> (correct, count) | fraction | None``
    override them; the defaults are Terrain's cross-entropy / MSE convention).
    """
    model, loss_fn, accuracy_fn = unwrap(model, loss_fn, accuracy_fn)
    work, X, y = prepare(model, data, None)
    names = [n for n, _ in work.named_parameters()]
    c = _as_param_dict(centre, names) if centre is not None else _params_of(work)
    dirs = [{n: d[n].to(c[n]) for n in names} for d in directions]
    ev = make_evaluator(work, c, dirs, X, y, batchnorm, memory_budget, fast, loss_fn=loss_fn, accuracy_fn=accuracy_fn,
                        point_batching=point_batching)
    coefs = np.atleast_2d(np.asarray(coefs, dtype=np.float64))
    bs = batch_size or batch_size_for(ev)
    losses, accs = [], []
    with torch.no_grad():
        for s in range(0, len(coefs), bs):
            l, a = ev.evaluate(coefs[s : s + bs])
            losses.append(l)
            accs.append(a)
    return np.concatenate(losses), (np.concatenate(accs) if accs and accs[0] is not None else None)

