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
        # Rows per chunk of samples (the segment path keeps about a dozen width-sized arrays
        # alive: the first layer's products, T0|T1|T2 and the walk's copy, the second
        # pre-activation...), balanced so the last chunk is not a sliver.  Counting them all
        # matters with two point threads, whose working sets share the last-level cache
        # (all 1,797 digits in one chunk: 10% fewer points/s than two chunks, measured).
        row_bytes = 12 * self.width * self.Xf.element_size()
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
        batch = self._batch_tables(coefs)
        segments = self._segments(coefs)
        total = torch.zeros(B, dtype=torch.float64, device=self.device)
        correct = torch.zeros(B, dtype=torch.int64, device=self.device)
        for start in range(0, self.n, self.chunk):
            stop = min(self.n, start + self.chunk)
            # Sums gathered in Python lists and scored a segment at a time: every torch call
            # made per point holds the GIL, which the other point threads then wait for.
            sums: list[tuple[list, torch.Tensor, torch.Tensor | None]] = []
            for segment in segments:
                self._segment_sums(coefs, batch, segment, start, stop, sums)
            order = torch.as_tensor([index for indices, _, _ in sums for index in indices], device=self.device)
            total.index_put_((order,), torch.cat([loss for _, loss, _ in sums]), accumulate=True)
            if self.classification:
                correct.index_put_((order,), torch.cat([corr for _, _, corr in sums]), accumulate=True)
        losses = (total / self.n).cpu().numpy()
        acc = (correct.to(torch.float64) / self.n).cpu().numpy() if self.classification else None
        return losses, acc

    def _segment_sums(self, coefs, batch, segment, start, stop, sums) -> None:
        """Append every point of ``segment``'s summed loss and correct count on samples ``start:stop``."""
        rows = stop - start
        last_kind, last = self.layers[-1]
        # A narrow classifier's logits are small: keep the segment's, score them in one go (when the
        # tail computes them: with one hidden layer the walk ends on the logits itself).
        logits = None
        if self.classification and last_kind == "linear" and last["narrow"] and len(self.layers) > 3:
            logits = self._buffer("logits", len(segment), last["out"], rows)
            slots = dict(zip(segment.tolist(), logits.unbind(0)))

        def record(index: int, z: torch.Tensor, first_layer: int) -> None:
            out = self._tail(z, batch, index, first_layer, start, stop, slots[index] if logits is not None else None)
            if out is not None:
                sums.append(([index], out[0].reshape(1), None if out[1] is None else out[1].reshape(1)))

        shared = self.segments_enabled and len(segment) >= self.MIN_SEGMENT_POINTS
        if not (shared and self._segment_chunk(coefs, batch, segment, start, stop, record)):
            for index in segment:
                self._dense_point(batch, index, start, stop, record)
        if logits is not None:
            sums.append((segment.tolist(), *self._classification_scores(logits, self.y[start:stop])))

    def _batch_tables(self, coefs: np.ndarray) -> dict:
        """Per-point coefficients, and the narrow layers' weights and biases at every point (small)."""
        C = torch.as_tensor(np.concatenate([np.ones((len(coefs), 1)), coefs], 1), dtype=self.dtype, device=self.device)
        narrow = {}
        for i, (kind, payload) in enumerate(self.layers):
            if kind == "linear" and payload["narrow"]:
                W = (C @ payload["Wrow"].reshape(self.K + 1, -1)).view(len(coefs), payload["out"], payload["in"])
                narrow[i] = list(zip(W.unbind(0), (C @ payload["b"]).unsqueeze(2).unbind(0)))
        return {"C": C.unbind(0), "narrow": narrow}

    def _segments(self, coefs: np.ndarray) -> list[np.ndarray]:
        """Runs of points that differ only in their last coefficient, sorted along it."""
        if not self.segments_enabled or len(coefs) < 3:
            return [np.arange(len(coefs))]
        groups: dict[tuple, list[int]] = {}
        for index, row in enumerate(coefs):
            groups.setdefault(tuple(row[:-1]), []).append(index)
        return [np.array(sorted(members, key=lambda i: coefs[i, -1])) for members in groups.values()]

    def _first_products(self, start: int, stop: int) -> torch.Tensor:
        if self.P is not None:
            return self.P[:, start:stop]
        first = self.layers[0][1]
        out = self._buffer("P", self.K + 1, stop - start, self.h1)
        Xc = self.Xf[start:stop].unsqueeze(0).expand(self.K + 1, -1, -1)
        return torch.baddbmm(first["b"][:, None, :], Xc, first["W"], out=out)

    def _dense_point(self, batch: dict, index: int, start: int, stop: int, record) -> None:
        """One point the plain way (on shared first-layer products and our buffers)."""
        z = self._combine(self._first_products(start, stop), batch["C"][index], self._buffer("z1", stop - start, self.h1))
        record(index, z, 1)

    def _tail(self, z: torch.Tensor, batch: dict, index: int, first_layer: int, start: int, stop: int, logits=None):
        """Run layers ``first_layer..`` on activations ``z`` at point ``index``: its summed loss and correct
        count, or None once the last layer's output is written to ``logits`` (classes, samples)."""
        rows = stop - start
        c = batch["C"][index]
        for i in range(first_layer, len(self.layers)):
            kind, payload = self.layers[i]
            if kind == "linear":
                if payload["narrow"]:
                    W, b = batch["narrow"][i][index]
                    if i == len(self.layers) - 1 and logits is not None:
                        torch.addmm(b, W, z.T, out=logits)
                        return None
                    outT = torch.addmm(b, W, z.T, out=self._buffer(f"o{i}", payload["out"], rows))
                    z = self._buffer(f"oT{i}", rows, payload["out"]).copy_(outT.T)
                else:
                    bias = self._combine(payload["b"], c, self._buffer(f"b{i}", payload["out"]))
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
    def _classification_scores(logits: torch.Tensor, y: torch.Tensor):
        """Summed cross-entropy and correct count of each of a stack of (classes, samples) logits.

        Reducing over the short class axis of this layout is several times faster
        than transposing back for ``cross_entropy`` and ``argmax``.
        """
        top, predicted = logits.max(1)  # argmax and logsumexp are far slower on this layout
        true_logit = logits.gather(1, y.view(1, 1, -1).expand(len(logits), 1, -1)).squeeze(1)
        per_sample = (logits - top.unsqueeze(1)).exp_().sum(1).log_().add_(top).sub_(true_logit)
        return per_sample.sum(1, dtype=torch.float64), predicted.eq(y).sum(1)

    def _segment_chunk(self, coefs, batch, segment, start, stop, record) -> bool:
        """Evaluate a segment's points on samples ``start:stop`` by walking out from its middle point.

        Hands each point's second pre-activation to ``record``.  Returns False (having done
        nothing) when so many units change sign inside the segment that dense products are cheaper.
        """
        rows, h1 = stop - start, self.h1
        middle = len(segment) // 2
        t_ref = coefs[segment[middle], -1]
        c_ref = batch["C"][segment[middle]]
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
        h2 = T.shape[1] // 3
        views = (T[:, :h2], T[:, h2 : 2 * h2], T[:, 2 * h2 :], self._buffer("Z2", rows, h2))
        record(segment[middle], self._second_preactivation(views, 0.0), 3)
        first = True
        for side, offsets, where in sides:
            if where is None:
                continue
            # The first side walks on a copy; the second may consume the original.
            walk = self._buffer("walk", *T.shape).copy_(T) if first else T
            first = False
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
                self._walk(walk, side, offsets, A, B, mask, where, record)
        return True

    def _sign_changes(self, A, B, mask, s_end: float) -> torch.Tensor:
        """(row, col) of the first-layer units whose sign differs between the reference and offset ``s_end``."""
        rows, h1 = A.shape
        z = torch.add(A, B, alpha=s_end, out=self._buffer("zend", rows, h1))
        return torch.gt(z, 0, out=self._buffer("on", rows, h1, dtype=torch.bool)).ne_(mask).nonzero()

    def _reference_products(self, A, B, mask, c_ref) -> torch.Tensor:
        """``[T0 | T1 | T2]`` side by side: the second pre-activation at offset s is ``T0 + s T1 + s^2 T2``
        before sign changes.  Side by side so that one sparse product updates two of them (``_walk``)."""
        rows, h1 = A.shape
        PQ = self._buffer("PQ", rows, 2 * h1)
        torch.mul(A, mask, out=PQ[:, :h1])
        torch.mul(B, mask, out=PQ[:, h1:])
        P_ref, Q = PQ[:, :h1], PQ[:, h1:]
        second = self.layers[2][1]
        h2 = second["out"]
        WE = self._buffer("WE", h1, 2 * h2)  # [W_ref | E]: the reference weights and the last direction's
        W_ref, E = WE[:, :h2], WE[:, h2:]
        self._combine(second["W"], c_ref, self._buffer("Wref", h1, h2))
        W_ref.copy_(self._buffer("Wref", h1, h2))
        E.copy_(second["W"][self.K])
        EW = self._buffer("EW", 2 * h1, h2)
        EW[:h1].copy_(E)
        EW[h1:].copy_(W_ref)
        b_ref = self._combine(second["b"], c_ref, self._buffer("bref", h2))
        T = self._buffer("T", rows, 3 * h2)
        torch.addmm(b_ref, P_ref, W_ref, out=T[:, :h2])
        torch.addmm(second["b"][self.K], PQ, EW, out=T[:, h2 : 2 * h2])
        torch.mm(Q, E, out=T[:, 2 * h2 :])
        return T

    def _walk(self, T, side, offsets, A, B, mask, where, record):
        """Evaluate ``side``'s points in order of increasing |s|, folding in each unit once it changes sign.

        A unit that changed sign contributes ``S = sigma (A + s B) = U + s V``
        (sigma = +1 if it switched on, -1 if off) through ``W2(s) = W_ref + s E``,
        i.e. ``U W_ref^T`` to T0, ``U E^T + V W_ref^T`` to T1 and ``V E^T`` to T2:
        exact for every later point of the side, since z is affine in s and so
        changes sign at most once.  ``U [W_ref | E]`` lands on ``[T0 | T1]`` and
        ``V [W_ref | E]`` on ``[T1 | T2]``: two sparse products per point.
        """
        rows, h1 = A.shape
        h2 = T.shape[1] // 3
        WE = self._buffer("WE", h1, 2 * h2)
        low, high = T[:, : 2 * h2], T[:, h2:]
        parts = (T[:, :h2], T[:, h2 : 2 * h2], T[:, 2 * h2 :], self._buffer("Z2", rows, h2))
        r, col = where[:, 0], where[:, 1]
        flat = r * h1 + col
        A_c, B_c = A.view(-1)[flat], B.reshape(-1)[flat]
        sigma = 1.0 - 2.0 * mask.view(-1)[flat].to(self.dtype)
        U, V = sigma * A_c, sigma * B_c
        # The point at which each unit has changed sign: the first with |s| >= its crossing
        # (the last point takes any that rounding puts beyond it).  Sorting by that point keeps
        # rows ascending within each point's share, as CSR wants.
        crossing = (-A_c / B_c).abs_()
        reach = torch.as_tensor(np.abs(offsets), dtype=self.dtype, device=self.device)
        first_point = torch.searchsorted(reach, crossing).clamp_(max=len(side) - 1)
        order = torch.sort(first_point.to(torch.int32), stable=True).indices
        first_point, r, col, U, V = first_point[order], r[order], col[order], U[order], V[order]
        counts = torch.bincount(first_point, minlength=len(side))
        # Every point's CSR row pointers at once, and its entries as views: nothing sliced per point
        # (each call holds the GIL that the other point threads wait for).
        per_row = torch.bincount(first_point * rows + r, minlength=len(side) * rows).view(len(side), rows)
        crows = torch.nn.functional.pad(per_row.cumsum(1), (1, 0)).unbind(0)
        sizes = counts.tolist()
        shape = (rows, h1)
        for index, s, size, crow, cols, u, v in zip(side, offsets, sizes, crows, col.split(sizes), U.split(sizes), V.split(sizes)):
            if size:
                low.addmm_(torch.sparse_csr_tensor(crow, cols, u, shape, check_invariants=False), WE)
                high.addmm_(torch.sparse_csr_tensor(crow, cols, v, shape, check_invariants=False), WE)
            record(index, self._second_preactivation(parts, float(s)), 3)

    def _second_preactivation(self, parts, s: float) -> torch.Tensor:
        """``T0 + s T1 + s^2 T2`` into ``Z`` from ``(T0, T1, T2, Z)``: the views of ``[T0 | T1 | T2]`` and a buffer."""
        T0, T1, T2, Z = parts
        return torch.add(T0, T1, alpha=s, out=Z).add_(T2, alpha=s * s)
