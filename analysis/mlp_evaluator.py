"""Exact, fast evaluation of zoo MLPs at many points ``theta + sum_k c_k d_k``.

Used by :mod:`analysis.landscape` for lines and planes.  Three ideas:

1. **The first layer is linear in the coefficients**:
   ``X W(c)^T + b(c) = sum_k c_k (X W_k^T + b_k)``.  The K+1 products ``P_k``
   are computed once and combined per point.
2. **Along a grid row, units change sign rarely and only once.**  For points
   where only the last coefficient ``t`` varies, the first pre-activation is
   affine, ``z(s) = A + s B`` with ``s = t - t_ref``, so each unit changes
   sign at most once along the row (about 1% of them per grid step on a
   trained digits MLP).  Between sign changes, with ``M`` the current ReLU
   mask, the second layer's pre-activation is exactly
   ``T0 + s T1 + s^2 T2`` with ``T0 = (M*A) W_r^T + b_r``,
   ``T1 = (M*B) W_r^T + (M*A) E^T + e`` and ``T2 = (M*B) E^T``, where
   ``W2(t) = W_r + s E``.  So the four products are computed once at the
   row's middle point and the evaluation walks outwards; when a unit changes
   sign its contribution ``sigma (A + s B)`` is folded into ``T0, T1, T2`` by
   sparse rank-one updates.  A point then costs two array passes and the
   layers after the second instead of a dense product.  Rows so short, or
   with so many sign changes, that dense products are cheaper are evaluated
   densely.
3. **No allocation per point.**  Every per-point array is written into buffers
   allocated once per thread: first-touching freshly allocated megabytes costs
   as much as the arithmetic on them.

Results equal a plain forward pass at ``theta + sum_k c_k d_k`` up to floating
point rounding; the tests compare every point against direct evaluation.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import zoo
from .point_evaluator import Evaluator

# Elementwise activations that can run in place on our own buffers.
_IN_PLACE = {nn.ReLU: torch.Tensor.relu_, nn.Tanh: torch.Tensor.tanh_, nn.Sigmoid: torch.Tensor.sigmoid_}


class MLPEvaluator(Evaluator):
    """Fast path for ``nn.Sequential`` MLPs (Linear / activation / BatchNorm1d in eval mode)."""

    thread_safe = True  # every buffer it writes is per thread
    shares_rows = True  # a point's value depends on the grid-row segment it is walked in (see PointParallel)
    MIN_SEGMENT_POINTS = 5  # the shared products cost four dense points
    # A unit that changes sign costs four sparse rank-one updates of width h2; at
    # sparse speed (a seventh of GEMM, measured) that is worth ~28 h2 dense multiply-adds.
    SPARSE_ENTRY_COST = 28
    NARROW = 64  # output widths below this use the transposed product (far faster on CPU BLAS)

    @staticmethod
    def supports(model: nn.Module, batchnorm: str) -> bool:
        if batchnorm != "keep" or not isinstance(model, nn.Sequential):
            return False
        children = [m for m in model.children() if not isinstance(m, nn.Flatten)]
        acts = tuple(zoo.ACTIVATIONS.values())
        if not children or not isinstance(children[0], nn.Linear) or not isinstance(children[-1], nn.Linear):
            return False
        return all(isinstance(m, (nn.Linear, nn.BatchNorm1d, *acts)) for m in children)

    def __init__(self, *args):
        super().__init__(*args)
        K = len(self.directions)
        self.K = K
        self.dtype = next(iter(self.centre.values())).dtype
        self.device = self.X.device
        self.layers: list[tuple[str, Any]] = []
        for name, mod in self.model.named_children():
            if isinstance(mod, nn.Linear):
                self.layers.append(("linear", self._linear_stack(name, mod)))
            elif isinstance(mod, nn.BatchNorm1d):
                g = self._stack(f"{name}.weight")
                beta = self._stack(f"{name}.bias")
                inv = torch.rsqrt(mod.running_var.to(self.dtype) + mod.eps)
                self.layers.append(("bn", (g, beta, mod.running_mean.to(self.dtype), inv)))
            elif not isinstance(mod, nn.Flatten):
                self.layers.append(("act", mod))
        self.Xf = self.X.reshape(self.n, -1).to(self.dtype)
        widths = [payload["out"] for kind, payload in self.layers if kind == "linear"]
        self.h1 = widths[0]
        self.width = max(widths + [self.Xf.shape[1]])
        # Rows per chunk of samples (the segment path keeps about eight width-sized arrays
        # alive), balanced so the last chunk is not a sliver.
        row_bytes = 8 * self.width * self.Xf.element_size()
        chunks = -(-self.n // max(64, self.memory_budget // row_bytes))
        self.chunk = -(-self.n // chunks)
        first = self.layers[0][1]
        # First layer, once per evaluator: P_k = X D_k^T + e_k, shape (K+1, n, h1)
        self.P = None
        if (K + 1) * self.n * self.h1 * self.Xf.element_size() <= 4 * self.memory_budget:
            self.P = torch.baddbmm(first["b"][:, None, :], self.Xf.unsqueeze(0).expand(K + 1, -1, -1), first["W"])
        self.segments_enabled = (
            len(self.layers) >= 3
            and self.layers[1][0] == "act"
            and type(self.layers[1][1]) is nn.ReLU
            and self.layers[2][0] == "linear"
            and self.device.type in ("cpu", "cuda")
        )
        self._local = threading.local()

    # ------------------------------------------------------------------ set-up

    def _stack(self, name: str) -> torch.Tensor:
        return torch.stack([self.centre[name]] + [d[name] for d in self.directions])

    def _linear_stack(self, name: str, mod: nn.Linear) -> dict:
        W = self._stack(f"{name}.weight")  # (K+1, out, in)
        out_features, in_features = W.shape[1:]
        if mod.bias is not None:
            b = self._stack(f"{name}.bias")
        else:
            b = torch.zeros(len(self.directions) + 1, out_features, dtype=W.dtype, device=W.device)
        narrow = out_features < self.NARROW
        return {
            "W": W.transpose(1, 2).contiguous(),  # (K+1, in, out): per-point weights come out as (in, out)
            "Wrow": W.contiguous() if narrow else None,  # (K+1, out, in) for the transposed product
            "b": b,
            "in": in_features,
            "out": out_features,
            "narrow": narrow,
        }

    def _buffer(self, name: str, *shape: int, dtype=None) -> torch.Tensor:
        """A per-thread scratch tensor, allocated the first time this name and shape is asked for."""
        buffers = self._local.__dict__.setdefault("buffers", {})
        key = (name, shape, dtype)
        buf = buffers.get(key)
        if buf is None:
            buf = buffers[key] = torch.empty(shape, dtype=dtype or self.dtype, device=self.device)
        return buf

    def _combine(self, stacked: torch.Tensor, c: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = sum_k c_k stacked[k]`` for a stack of (K+1, ...) tensors."""
        torch.mv(stacked.reshape(stacked.shape[0], -1).T, c, out=out.view(-1))
        return out

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, coefs: np.ndarray):
        coefs = np.asarray(coefs, dtype=np.float64).reshape(len(coefs), -1)
        B = len(coefs)
        total = torch.zeros(B, dtype=torch.float64, device=self.device)
        correct = torch.zeros(B, dtype=torch.int64, device=self.device)
        for segment in self._segments(coefs):
            shared = self.segments_enabled and len(segment) >= self.MIN_SEGMENT_POINTS
            for start in range(0, self.n, self.chunk):
                stop = min(self.n, start + self.chunk)
                if shared and self._segment_chunk(coefs, segment, start, stop, total, correct):
                    continue
                for index in segment:
                    loss, corr = self._dense_point(coefs[index], start, stop)
                    total[index] += loss
                    if corr is not None:
                        correct[index] += corr
        losses = (total / self.n).cpu().numpy()
        acc = (correct.to(torch.float64) / self.n).cpu().numpy() if self.classification else None
        return losses, acc

    def _segments(self, coefs: np.ndarray) -> list[np.ndarray]:
        """Runs of points that differ only in their last coefficient, sorted along it."""
        if not self.segments_enabled or len(coefs) < 3:
            return [np.arange(len(coefs))]
        groups: dict[tuple, list[int]] = {}
        for index, row in enumerate(coefs):
            groups.setdefault(tuple(row[:-1]), []).append(index)
        return [np.array(sorted(members, key=lambda i: coefs[i, -1])) for members in groups.values()]

    def _coefficients(self, c: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.concatenate([[1.0], c]), dtype=self.dtype, device=self.device)

    def _first_products(self, start: int, stop: int) -> torch.Tensor:
        if self.P is not None:
            return self.P[:, start:stop]
        first = self.layers[0][1]
        out = self._buffer("P", self.K + 1, stop - start, self.h1)
        Xc = self.Xf[start:stop].unsqueeze(0).expand(self.K + 1, -1, -1)
        return torch.baddbmm(first["b"][:, None, :], Xc, first["W"], out=out)

    def _dense_point(self, coef: np.ndarray, start: int, stop: int):
        """One point the plain way (on shared first-layer products and our buffers)."""
        c = self._coefficients(coef)
        P = self._first_products(start, stop)
        z = self._buffer("z1", stop - start, self.h1)
        self._combine(P, c, z)
        return self._tail(z, c, 1, start, stop)

    def _tail(self, z: torch.Tensor, c: torch.Tensor, first_layer: int, start: int, stop: int):
        """Run layers ``first_layer..`` on activations ``z`` at point ``c``; summed loss and correct count."""
        rows = stop - start
        for i in range(first_layer, len(self.layers)):
            kind, payload = self.layers[i]
            if kind == "linear":
                bias = self._combine(payload["b"], c, self._buffer(f"b{i}", payload["out"]))
                if payload["narrow"]:
                    Wrow = self._combine(payload["Wrow"], c, self._buffer(f"w{i}", payload["out"], payload["in"]))
                    outT = self._buffer(f"o{i}", payload["out"], rows)
                    torch.mm(Wrow, z.T, out=outT)
                    outT.add_(bias[:, None])
                    if i == len(self.layers) - 1 and self.classification:
                        return self._classification_scores(outT, self.y[start:stop])
                    z = self._buffer(f"oT{i}", rows, payload["out"]).copy_(outT.T)
                else:
                    W = self._combine(payload["W"], c, self._buffer(f"w{i}", payload["in"], payload["out"]))
                    z = torch.addmm(bias, z, W, out=self._buffer(f"o{i}", rows, payload["out"]))
            elif kind == "bn":
                g, beta, mean, inv = payload
                scale = (c @ g) * inv
                shift = (c @ beta) - mean * scale
                z = z.mul_(scale).add_(shift)
            else:
                in_place = _IN_PLACE.get(type(payload))
                z = in_place(z) if in_place is not None else payload(z)
        y = self.y[start:stop]
        if self.classification:
            loss = F.cross_entropy(z, y, reduction="sum")
            return loss.to(torch.float64), (z.argmax(1) == y).sum()
        loss, _ = self._reduce(z.unsqueeze(0), y)
        return loss[0].to(torch.float64), None

    @staticmethod
    def _classification_scores(logitsT: torch.Tensor, y: torch.Tensor):
        """Summed cross-entropy and correct count from logits laid out (classes, samples).

        Reducing over the short class axis of this layout is several times faster
        than transposing back for ``cross_entropy`` and ``argmax``.
        """
        top, predicted = logitsT.max(0)
        log_normaliser = (logitsT - top).exp_().sum(0).log_().add_(top)
        loss = log_normaliser.sum(dtype=torch.float64) - logitsT.gather(0, y[None]).sum(dtype=torch.float64)
        return loss, (predicted == y).sum()

    def _segment_chunk(self, coefs, segment, start, stop, total, correct) -> bool:
        """Evaluate a segment's points on samples ``start:stop`` by walking out from its middle point.

        Returns False (having done nothing) when so many units change sign
        inside the segment that dense products are cheaper.
        """
        rows, h1 = stop - start, self.h1
        middle = len(segment) // 2
        t_ref = coefs[segment[middle], -1]
        c_ref = self._coefficients(coefs[segment[middle]])
        P = self._first_products(start, stop)
        A = self._combine(P, c_ref, self._buffer("A", rows, h1))  # first pre-activation at the reference
        B = P[self.K]  # its derivative along the last coefficient
        mask = torch.gt(A, 0, out=self._buffer("mask", rows, h1, dtype=torch.bool))
        sides = []
        for side in (segment[middle + 1 :], segment[:middle][::-1]):  # outward: increasing |s|
            offsets = coefs[side, -1] - t_ref
            sides.append((side, offsets, self._sign_changes(A, B, mask, offsets[-1]) if len(side) else None))
        changes = sum(len(w) for _, _, w in sides if w is not None)
        if len(segment) < 4 + self.SPARSE_ENTRY_COST * changes / (rows * h1):
            return False

        T = self._reference_products(A, B, mask, c_ref)
        record = self._make_recorder(coefs, start, stop, total, correct)
        record(segment[middle], self._second_preactivation(T, 0.0))
        first = True
        for side, offsets, where in sides:
            if where is None:
                continue
            # The first side walks on copies; the second may consume the originals.
            walk = tuple(self._buffer(f"walk{k}", rows, t.shape[1]).copy_(t) for k, t in enumerate(T)) if first else T
            first = False
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
                self._walk(walk, side, offsets, A, B, mask, where, c_ref, record)
        return True

    def _sign_changes(self, A, B, mask, s_end: float) -> torch.Tensor:
        """(row, col) of the first-layer units whose sign differs between the reference and offset ``s_end``."""
        rows, h1 = A.shape
        z = torch.add(A, B, alpha=s_end, out=self._buffer("zend", rows, h1))
        return torch.gt(z, 0, out=self._buffer("on", rows, h1, dtype=torch.bool)).ne_(mask).nonzero()

    def _reference_products(self, A, B, mask, c_ref):
        """``(T0, T1, T2)``: the second pre-activation at offset s is ``T0 + s T1 + s^2 T2`` before sign changes."""
        rows, h1 = A.shape
        PQ = self._buffer("PQ", rows, 2 * h1)
        torch.mul(A, mask, out=PQ[:, :h1])
        torch.mul(B, mask, out=PQ[:, h1:])
        P_ref, Q = PQ[:, :h1], PQ[:, h1:]
        second = self.layers[2][1]
        h2 = second["out"]
        W_ref = self._combine(second["W"], c_ref, self._buffer("Wref", h1, h2))
        E = second["W"][self.K]  # (h1, h2): the last direction's second-layer weights, transposed
        EW = self._buffer("EW", 2 * h1, h2)
        EW[:h1].copy_(E)
        EW[h1:].copy_(W_ref)
        b_ref = self._combine(second["b"], c_ref, self._buffer("bref", h2))
        return (
            torch.addmm(b_ref, P_ref, W_ref, out=self._buffer("T0", rows, h2)),
            torch.addmm(second["b"][self.K], PQ, EW, out=self._buffer("T1", rows, h2)),
            torch.mm(Q, E, out=self._buffer("T2", rows, h2)),
        )

    def _walk(self, T, side, offsets, A, B, mask, where, c_ref, record):
        """Evaluate ``side``'s points in order of increasing |s|, folding in each unit once it changes sign.

        A unit that changed sign contributes ``S = sigma (A + s B) = U + s V``
        (sigma = +1 if it switched on, -1 if off) through ``W2(s) = W_ref + s E``,
        i.e. ``U W_ref^T`` to T0, ``U E^T + V W_ref^T`` to T1 and ``V E^T`` to T2:
        exact for every later point of the side, since z is affine in s and so
        changes sign at most once.
        """
        rows, h1 = A.shape
        second = self.layers[2][1]
        W_ref = self._buffer("Wref", h1, second["out"])
        E = second["W"][self.K]
        r, col = where[:, 0], where[:, 1]
        A_c, B_c = A[r, col], B[r, col]
        sigma = 1.0 - 2.0 * mask[r, col].to(self.dtype)
        U, V = sigma * A_c, sigma * B_c
        # The point at which each unit has changed sign: the first with |s| >= its crossing
        # (the last point takes any that rounding puts beyond it).  Sorting by that point keeps
        # rows ascending within each point's share, as CSR wants.
        crossing = (-A_c / B_c).abs_()
        reach = torch.as_tensor(np.abs(offsets), dtype=self.dtype, device=self.device)
        first_point = torch.bucketize(crossing, reach).clamp_(max=len(side) - 1)
        order = torch.sort(first_point.to(torch.int32), stable=True).indices
        r, col, U, V = r[order], col[order], U[order], V[order]
        ends = torch.bincount(first_point, minlength=len(side)).cumsum(0).tolist()
        shape = (rows, h1)
        begin = 0
        for index, s, end in zip(side, offsets, ends):
            if end > begin:
                crow = torch._convert_indices_from_coo_to_csr(r[begin:end], rows)
                cols = col[begin:end]
                X_U = torch.sparse_csr_tensor(crow, cols, U[begin:end], shape, check_invariants=False)
                X_V = torch.sparse_csr_tensor(crow, cols, V[begin:end], shape, check_invariants=False)
                T[0].addmm_(X_U, W_ref)
                T[1].addmm_(X_U, E).addmm_(X_V, W_ref)
                T[2].addmm_(X_V, E)
            begin = end
            record(index, self._second_preactivation(T, float(s)))

    def _second_preactivation(self, T, s: float) -> torch.Tensor:
        return torch.add(T[0], T[1], alpha=s, out=self._buffer("Z2", *T[0].shape)).add_(T[2], alpha=s * s)

    def _make_recorder(self, coefs, start, stop, total, correct):
        def record(index: int, Z: torch.Tensor) -> None:
            loss, corr = self._tail(Z, self._coefficients(coefs[index]), 3, start, stop)
            total[index] += loss
            if corr is not None:
                correct[index] += corr

        return record
