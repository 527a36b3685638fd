"""Curvature operators: a symmetric matrix known only by its products with vectors.

An *operator* multiplies a vector by a symmetric matrix and counts how often it
did (the split of hessian-eigenthings / curvlinops); :mod:`analysis.curvature`'s
algorithms take any operator.  Every operator exposes ``size`` (dimension),
``dtype``, ``device``, ``matvec(v)`` for a 1-D tensor ``v`` and the counter
``num_matvecs``.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterable, Mapping, Protocol

import numpy as np
import torch
from torch import nn

from . import metrics

__all__ = ["Operator", "DenseOperator", "HessianOperator", "dense_matrix"]


class Operator(Protocol):
    size: int
    dtype: torch.dtype
    device: torch.device
    num_matvecs: int

    def matvec(self, v: torch.Tensor) -> torch.Tensor: ...


class DenseOperator:
    """An explicit symmetric matrix as an operator (counts its products)."""

    def __init__(self, matrix: torch.Tensor | np.ndarray):
        m = torch.as_tensor(matrix)
        if m.dim() != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"DenseOperator needs a square matrix, got shape {tuple(m.shape)}")
        if not m.is_floating_point():
            m = m.double()
        self.matrix = m
        self.size = m.shape[0]
        self.dtype = m.dtype
        self.device = m.device
        self.num_matvecs = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        self.num_matvecs += 1
        return self.matrix @ v.to(self.dtype)


class HessianOperator:
    """Hessian of the mean loss of ``model`` on ``data`` w.r.t. its parameters.

    ``HessianOperator(model, loss_fn, data)``: ``loss_fn(outputs, y)`` returns
    the *mean* loss of a batch (``None`` picks cross-entropy for integer ``y``
    and MSE for float ``y``); ``data`` is ``(X, y)``.  The operator works on a
    private copy of the model in eval mode (BatchNorm uses its running
    statistics, dropout is off), so the caller's model is never touched.

    ``batch_size``: ``None`` evaluates the full batch at once and (with
    ``method="double_backward"``) keeps the gradient graph between products,
    so each product costs one extra backward pass.  With a batch size, each
    product loops over chunks and re-runs forward/backward per chunk, weighting
    chunks by size (exactly the full-data Hessian, with less memory).
    ``method="forward_over_reverse"`` uses ``torch.func.jvp`` of
    ``torch.func.grad`` instead.  ``param_filter(name) -> bool`` restricts the
    parameters (default: all).  ``num_matvecs`` counts Hessian-vector products.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        data: tuple[torch.Tensor, torch.Tensor],
        *,
        batch_size: int | None = None,
        method: str = "double_backward",
        param_filter: Callable[[str], bool] | None = None,
        device: str | torch.device | None = None,
    ):
        import copy

        from .sources.base import unwrap

        if getattr(model, "differentiable", True) is False:
            raise ValueError("this model is forward-only (an ONNX graph): Hessians need a Hugging Face folder or a Terrain checkpoint")
        # a LoadedModel brings its own loss, and its accuracy counts what that loss averages over
        model, loss_fn, accuracy_fn = unwrap(model, loss_fn)
        if method not in ("double_backward", "forward_over_reverse"):
            raise ValueError(f"method must be 'double_backward' or 'forward_over_reverse', got {method!r}")
        self.model = copy.deepcopy(model).eval()
        if device is not None:
            self.model = self.model.to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        named = [(n, p) for n, p in self.model.named_parameters() if param_filter is None or param_filter(n)]
        if not named:
            raise ValueError("no parameters selected for the Hessian")
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.params = {n: p.detach().clone() for n, p in named}
        first = named[0][1]
        self.dtype = first.dtype
        self.device = first.device
        self.size = sum(self.numels)
        self.buffers = {n: b for n, b in self.model.named_buffers()}
        self.frozen = {n: p.detach() for n, p in self.model.named_parameters() if n not in self.params}
        X, y = data
        self.X = X.to(self.device)
        self.y = y.to(self.device)
        self.n = X.shape[0]
        if self.n == 0:
            raise ValueError("data is empty")
        self.loss_fn = loss_fn if loss_fn is not None else metrics.loss_fn_for(self.y)
        self.method = method
        self.batch_size = batch_size if batch_size else self.n
        self.num_matvecs = 0
        self._cached: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self._count_fn = accuracy_fn
        self._weights: list[float] | None = None

    # vector <-> parameter dict ------------------------------------------------
    def to_vector(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([tensors[n].reshape(-1).to(self.dtype) for n in self.names])

    def to_dict(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(vector, self.numels)
        return {n: part.reshape(s) for n, part, s in zip(self.names, parts, self.shapes)}

    def _loss(self, params: Mapping[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(self.model, ({**self.frozen, **params}, self.buffers), (X,))
        return self.loss_fn(out, y)

    def _chunks(self) -> Iterable[tuple[torch.Tensor, torch.Tensor, float]]:
        starts = range(0, self.n, self.batch_size)
        if self._weights is None:
            self._weights = self._chunk_weights(starts)
        for start, w in zip(starts, self._weights):
            yield self.X[start : start + self.batch_size], self.y[start : start + self.batch_size], w

    def _chunk_weights(self, starts: range) -> list[float]:
        """Each chunk's share of the full batch's mean loss: its rows, or -- when the model's loss averages
        over label tokens (a language model with padding or -100 labels) -- its label tokens, as counted by
        the model's accuracy (one forward pass per chunk, once per operator)."""
        from .point_evaluator import model_output

        counts = [float(min(self.batch_size, self.n - start)) for start in starts]
        if self._count_fn is not None and len(counts) > 1:
            with torch.no_grad():
                for k, start in enumerate(starts):
                    Xc, yc = self.X[start : start + self.batch_size], self.y[start : start + self.batch_size]
                    out = torch.func.functional_call(self.model, ({**self.frozen, **self.params}, self.buffers), (Xc,))
                    counted = self._count_fn(model_output(out), yc)
                    if isinstance(counted, tuple):
                        counts[k] = float(counted[1])
        total = sum(counts)
        return [c / total for c in counts] if total > 0 else [1.0 / len(counts)] * len(counts)

    def loss(self) -> float:
        with torch.no_grad():
            return float(sum(w * self._loss(self.params, Xc, yc) for Xc, yc, w in self._chunks()))

    def gradient(self) -> torch.Tensor:
        total = torch.zeros(self.size, dtype=self.dtype, device=self.device)
        for Xc, yc, w in self._chunks():
            p = {n: t.detach().requires_grad_(True) for n, t in self.params.items()}
            g = torch.autograd.grad(self._loss(p, Xc, yc), list(p.values()), allow_unused=True, materialize_grads=True)
            total += w * torch.cat([t.reshape(-1) for t in g])
        return total

    def _hvp(self, loss: torch.Tensor, leaves: list[torch.Tensor], vd, grads=None, retain: bool = False):
        """Hessian-vector product by double backward; parameters the loss never touches
        (a BERT pooler under a masked-LM head) have zero rows."""
        if grads is None:
            grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
        used = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        hv = torch.autograd.grad(
            [grads[i] for i in used], [leaves[i] for i in used], grad_outputs=[vd[self.names[i]] for i in used],
            retain_graph=retain, allow_unused=True,
        )
        out = [torch.zeros_like(t) for t in leaves]
        for i, h in zip(used, hv):
            if h is not None:
                out[i] = h
        return torch.cat([h.reshape(-1) for h in out])

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape != (self.size,):
            raise ValueError(f"vector must have shape ({self.size},), got {tuple(v.shape)}")
        v = v.to(device=self.device, dtype=self.dtype)
        self.num_matvecs += 1
        vd = self.to_dict(v)
        if self.method == "forward_over_reverse":
            total = torch.zeros(self.size, dtype=self.dtype, device=self.device)
            for Xc, yc, w in self._chunks():
                grad_fn = torch.func.grad(lambda p: self._loss(p, Xc, yc))
                with warnings.catch_warnings():
                    # torch's forward-AD decompositions still call torch.jit.script internally
                    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
                    _, hv = torch.func.jvp(grad_fn, (self.params,), (vd,))
                total += w * self.to_vector(hv)
            return total
        if self.batch_size >= self.n:
            # one chunk: keep the gradient graph and differentiate it again per product
            if self._cached is None:
                p = {n: t.detach().requires_grad_(True) for n, t in self.params.items()}
                leaves = list(p.values())
                grads = torch.autograd.grad(self._loss(p, self.X, self.y), leaves, create_graph=True, allow_unused=True)
                self._cached = (leaves, list(grads))
            leaves, grads = self._cached
            return self._hvp(None, leaves, vd, grads, retain=True)
        total = torch.zeros(self.size, dtype=self.dtype, device=self.device)
        for Xc, yc, w in self._chunks():
            p = {n: t.detach().requires_grad_(True) for n, t in self.params.items()}
            leaves = list(p.values())
            total += w * self._hvp(self._loss(p, Xc, yc), leaves, vd)
        return total

    def release(self) -> None:
        """Drop the cached gradient graph (frees activation memory)."""
        self._cached = None

    def load_weights(self, model: nn.Module) -> None:
        """Take the current parameters and buffers of ``model``, the module this operator was built from
        (since changed in place, e.g. by training): one operator then serves every measurement of a run
        without copying the module each time.  Drops the cached graph."""
        from .sources.base import unwrap

        module, _, _ = unwrap(model, None)
        current = dict(module.named_parameters())
        with torch.no_grad():
            self.params = {n: current[n].detach().to(self.device).clone() for n in self.names}
            for n, t in self.frozen.items():
                t.copy_(current[n])
            for n, b in module.named_buffers():
                self.buffers[n].copy_(b)
        self._cached = None


def dense_matrix(op: Operator) -> torch.Tensor:
    """Materialise an operator as a dense matrix with ``op.size`` products (small operators only)."""
    if op.size > 20_000:
        raise ValueError(f"refusing to materialise a {op.size}x{op.size} matrix")
    eye = torch.eye(op.size, dtype=op.dtype, device=op.device)
    cols = [op.matvec(eye[i]) for i in range(op.size)]
    return torch.stack(cols, dim=1)
