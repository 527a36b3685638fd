"""Loss landscapes: 1-D lines and 2-D planes through parameter space.

Every point is evaluated at exactly ``theta + a * d1 + b * d2`` built from the
centre ``theta`` (never by accumulating steps), in eval mode under
``torch.no_grad()``, on a private functional copy of the model: the caller's
model is never perturbed.

Directions
    ``axes="random"``: two seeded Gaussian directions, filter-normalised (Li et
    al. 2018): for every weight tensor with two or more dimensions, each output
    filter/row ``d[k]`` is rescaled to the norm of the weight's filter
    ``theta[k]``.  One-dimensional parameters (biases, BatchNorm/LayerNorm
    scales and shifts) get a zero direction unless ``include_bias=True``, in
    which case each such vector is rescaled to the norm of the parameter.
    ``axes="hessian"``: the top-2 Hessian eigenvectors of the loss on the
    evaluation data (:func:`analysis.curvature.lanczos`), unit norm.
    ``axes="pca"``: the top-2 principal directions of a training trajectory
    ``theta_t - theta_final`` (centred PCA, as in Li et al.), unit norm; the
    trajectory is projected onto the plane and returned.
    ``axes="three_models"``: the affine plane through ``model`` (origin) and
    ``models=(B, C)``: ``d1 = B - A``, ``d2 = C - A``, not normalised, so B is
    at (1, 0) and C at (0, 1); ``markers={name: state}`` (e.g. merges) are
    placed by least squares (:mod:`analysis.merging.plane`).

Span units
    Coordinates multiply the directions.  For random (filter-normalised)
    directions ``a = 1`` moves every filter by its own norm; for hessian/pca
    directions (unit norm) ``a`` is a Euclidean distance in parameter space.

BatchNorm
    ``batchnorm="keep"`` (the default) evaluates in eval mode with the
    centre's running statistics at every point (buffers are not part of the
    directions).  ``batchnorm="recompute"`` re-estimates the running statistics
    at every point from the evaluation data (one extra pass per point, in
    chunks, cumulative average) before evaluating; it is slower and only uses
    the generic evaluator.  For :func:`line` between two checkpoints,
    ``batchnorm="interpolate"`` interpolates the floating-point buffers too.

Coarse to fine
    A plane is computed in levels: first every ``S``-th grid line (plus the last
    one) in both axes, so the coarse grid is a subset of the final grid, then
    whole rows (fixed ``a``) at row strides ``S/2, S/4, ..., 1``.  After each evaluated batch ``on_progress`` gets
    ``{"type": "points", "points": [{"i", "j", "a", "b", "loss", "accuracy"}],
    "done", "total", "level", "levels", "stride"}``; a ``{"type": "start", ...}``
    event with the axes comes first.  Pass ``resume=`` (a previous
    :class:`Surface`, its ``to_dict()``, or ``{"loss", "accuracy", "computed"}``
    arrays) to skip points that are already computed.

Speed
    Points are evaluated in batches of whole grid rows.  Zoo MLPs go through
    :mod:`analysis.mlp_evaluator`: the first layer's products are computed once
    per plane (it is linear in ``(a, b)``), and along each row the second
    layer's products are shared and updated only where a ReLU unit changes
    sign.  Other models use ``torch.func.vmap`` over stacked parameter sets.

Array convention: ``loss[i, j]`` is the loss at ``(a[i], b[j])`` (``numpy``
"ij" indexing; transpose for a plotly heatmap whose ``z[row=y][col=x]``).
"""

from __future__ import annotations

import copy
import itertools
import os
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import metrics
from .mlp_evaluator import MLPEvaluator
from .point_evaluator import Evaluator
from .sources.base import unwrap

__all__ = [
    "Surface",
    "Line",
    "plane",
    "line",
    "random_direction",
    "filter_normalized_direction",
    "pca_directions",
    "hessian_directions",
    "grid_levels",
    "evaluate_points",
]

DEFAULT_MEMORY_BUDGET = 16 * 2**20  # bytes of activations per evaluation batch (small chunks stay in cache)
MAX_RESOLUTION = 501


# --------------------------------------------------------------------------- results


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass
class Surface:
    """A 2-D loss surface; ``loss[i, j]`` is at ``(a[i], b[j])``; NaN where not computed."""

    a: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    computed: np.ndarray
    axes: str
    directions: dict = field(default_factory=dict)  # metadata: kind, seed, norms, eigenvalues, ...
    trajectory: np.ndarray | None = None  # (T, 2) projected coordinates
    trajectory_steps: list[int] | None = None
    trajectory_loss: np.ndarray | None = None  # loss at the projected points (in-plane), if computed
    markers: list[dict] | None = None  # named models placed on the plane: name, a, b, off_plane, loss, accuracy
    centre_loss: float | None = None
    centre_accuracy: float | None = None
    num_points: int = 0
    seconds: float = 0.0
    coarse_seconds: float | None = None  # time until the first full coarse surface
    d1: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    d2: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-able form (non-finite values and missing points become ``None``)."""

        def grid(arr):
            if arr is None:
                return None
            return [[_finite_or_none(v) if ok else None for v, ok in zip(row, okrow)] for row, okrow in zip(arr, self.computed)]

        return {
            "a": self.a.tolist(),
            "b": self.b.tolist(),
            "loss": grid(self.loss),
            "accuracy": grid(self.accuracy),
            "computed": self.computed.tolist(),
            "indexing": "loss[i][j] is at (a[i], b[j])",
            "axes": self.axes,
            "directions": self.directions,
            "trajectory": None if self.trajectory is None else self.trajectory.tolist(),
            "trajectory_steps": self.trajectory_steps,
            "trajectory_loss": None
            if self.trajectory_loss is None
            else [_finite_or_none(v) for v in self.trajectory_loss],
            "markers": self.markers,
            "centre_loss": _finite_or_none(self.centre_loss) if self.centre_loss is not None else None,
            "centre_accuracy": self.centre_accuracy,
            "num_points": self.num_points,
            "seconds": self.seconds,
            "coarse_seconds": self.coarse_seconds,
        }


@dataclass
class Line:
    """A 1-D loss profile: ``loss[k]`` at ``theta(t[k])``."""

    t: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    kind: str  # "interpolation" or "direction"
    directions: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "t": self.t.tolist(),
            "loss": [_finite_or_none(v) for v in self.loss],
            "accuracy": None if self.accuracy is None else [float(v) for v in self.accuracy],
            "kind": "line",
            "mode": self.kind,
            "directions": self.directions,
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------- directions


def _params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _as_param_dict(source: nn.Module | Mapping[str, torch.Tensor], names: Sequence[str]) -> dict[str, torch.Tensor]:
    state = source.state_dict() if isinstance(source, nn.Module) else source
    missing = [n for n in names if n not in state]
    if missing:
        raise ValueError(f"state is missing parameters {missing[:5]}")
    return {n: state[n].detach() for n in names}


def filter_normalized_direction(
    direction: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor],
    *,
    include_bias: bool = False,
    eps: float = 1e-10,
) -> dict[str, torch.Tensor]:
    """Rescale ``direction`` filter by filter to the norms of ``weights`` (Li et al. 2018).

    For tensors with ``dim >= 2`` each slice ``[k]`` along dimension 0 (an
    output row of a Linear, a filter of a Conv, a token row of an embedding)
    gets norm ``||weights[k]||``.  One-dimensional tensors become zero unless
    ``include_bias``, in which case the whole vector gets the parameter's norm.
    """
    out = {}
    for name, d in direction.items():
        d = d.detach()
        w = weights[name].detach().to(d.dtype)
        if d.dim() >= 2:
            dn = d.reshape(d.shape[0], -1).norm(dim=1)
            wn = w.reshape(w.shape[0], -1).norm(dim=1)
            scale = (wn / (dn + eps)).reshape(-1, *([1] * (d.dim() - 1)))
            out[name] = d * scale
        elif include_bias:
            out[name] = d * (w.norm() / (d.norm() + eps))
        else:
            out[name] = torch.zeros_like(d)
    return out


def random_direction(
    params: Mapping[str, torch.Tensor],
    *,
    seed: int = 0,
    filter_normalize: bool = True,
    include_bias: bool = False,
) -> dict[str, torch.Tensor]:
    """A seeded Gaussian direction shaped like ``params`` (filter-normalised by default).

    The draw depends only on ``seed`` and the parameter names/shapes (CPU
    generator, float64, then cast), so it is reproducible across devices.
    """
    gen = torch.Generator().manual_seed(int(seed))
    params = {n: p.detach() for n, p in params.items()}
    raw = {
        n: torch.randn(p.shape, generator=gen, dtype=torch.float64).to(device=p.device, dtype=p.dtype)
        for n, p in params.items()
    }
    if filter_normalize:
        return filter_normalized_direction(raw, params, include_bias=include_bias)
    if not include_bias:
        raw = {n: (d if d.dim() >= 2 else torch.zeros_like(d)) for n, d in raw.items()}
    return raw


def _flat(d: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1).to(torch.float64) for n in names])


def _unflat(v: torch.Tensor, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, pos = {}, 0
    for n, p in like.items():
        out[n] = v[pos : pos + p.numel()].reshape(p.shape).to(dtype=p.dtype, device=p.device)
        pos += p.numel()
    return out


def pca_directions(
    states: Sequence[Mapping[str, torch.Tensor]],
    centre: Mapping[str, torch.Tensor],
    *,
    include_bias: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Top-2 principal directions of ``states - centre`` (centred PCA).

    Returns ``(d1, d2, explained_variance_ratio (2,), coords (T, 2))`` where
    ``coords`` projects every state onto the orthonormal ``(d1, d2)`` around
    ``centre``.  One-dimensional parameters are left out unless
    ``include_bias``.
    """
    names = list(centre)
    if len(states) < 3:
        raise ValueError("PCA axes need a trajectory of at least 3 states")
    keep = {n: (centre[n].dim() >= 2 or include_bias) for n in names}
    c = _flat(centre, names)
    mask = torch.cat([torch.full((centre[n].numel(),), keep[n], dtype=torch.bool) for n in names])
    M = torch.stack([_flat(_as_param_dict(s, names), names) - c for s in states])  # (T, P)
    M = M * mask
    Mc = M - M.mean(0, keepdim=True)
    # (T x T) Gram matrix: T is small, P may be large
    G = Mc @ Mc.T
    evals, evecs = torch.linalg.eigh(G)
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order], evecs[:, order]
    if float(evals[1]) <= 1e-12 * max(float(evals[0]), 1e-300):
        raise ValueError("the trajectory spans fewer than two dimensions; PCA axes are undefined")
    dirs = []
    for k in range(2):
        d = Mc.T @ evecs[:, k]
        dirs.append(d / d.norm())
    ratio = (evals[:2] / evals.clamp(min=0).sum()).numpy()
    coords = torch.stack([M @ dirs[0], M @ dirs[1]], dim=1).numpy()
    return _unflat(dirs[0], centre), _unflat(dirs[1], centre), ratio, coords


def hessian_directions(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    seed: int = 0,
    tol: float = 1e-4,
    batch_size: int | None = None,
    loss_fn: Callable | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """Top-2 Hessian eigenvectors (unit norm) of the loss on ``data`` as parameter dicts."""
    from . import curvature

    model, loss_fn, _ = unwrap(model, loss_fn)
    op = curvature.HessianOperator(model, loss_fn, data, batch_size=batch_size)
    res = curvature.lanczos(op, 2, tol=tol, seed=seed)
    d1 = op.to_dict(res.eigenvectors[:, 0].contiguous())
    d2 = op.to_dict(res.eigenvectors[:, 1].contiguous())
    full = _params_of(model)
    for d in (d1, d2):  # parameters outside the operator (none by default) get zero
        for n, p in full.items():
            d.setdefault(n, torch.zeros_like(p))
    meta = {"eigenvalues": [float(x) for x in res.eigenvalues], "num_matvecs": res.num_matvecs}
    return {n: d1[n] for n in full}, {n: d2[n] for n in full}, meta


# --------------------------------------------------------------------------- grids


def grid_levels(n: int, min_lines: int = 5) -> list[int]:
    """Strides for coarse-to-fine refinement of an ``n``-point axis: ``[S, S/2, ..., 1]``.

    ``S`` is the largest power of two leaving at least ``min_lines - 1``
    intervals, so the coarse level has about ``min_lines`` to ``2*min_lines``
    lines per axis.
    """
    s = 1
    while (n - 1) // (2 * s) >= min_lines - 1:
        s *= 2
    levels = []
    while s >= 1:
        levels.append(s)
        s //= 2
    return levels


def _axis_indices(n: int, stride: int) -> np.ndarray:
    idx = set(range(0, n, stride))
    idx.add(n - 1)
    return np.array(sorted(idx))


def _axis(resolution: int, span: tuple[float, float]) -> np.ndarray:
    return np.linspace(span[0], span[1], resolution)


def _parse_span(span, default: float) -> tuple[tuple[float, float], tuple[float, float]]:
    if span is None:
        span = default
    if isinstance(span, (int, float)):
        s = float(span)
        if not math.isfinite(s) or s <= 0:
            raise ValueError(f"span must be a positive number, got {span!r}")
        return (-s, s), (-s, s)
    try:
        (a0, a1), (b0, b1) = span
        out = (float(a0), float(a1)), (float(b0), float(b1))
    except (TypeError, ValueError):
        raise ValueError(f"span must be a number or ((a_min, a_max), (b_min, b_max)), got {span!r}") from None
    for lo, hi in out:
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"span ranges must be finite with min < max, got {span!r}")
    return out


def _parse_resolution(resolution) -> tuple[int, int]:
    if isinstance(resolution, int):
        nx = ny = resolution
    else:
        nx, ny = (int(r) for r in resolution)
    for r in (nx, ny):
        if not 2 <= r <= MAX_RESOLUTION:
            raise ValueError(f"resolution must be between 2 and {MAX_RESOLUTION}, got {resolution!r}")
    return nx, ny


# --------------------------------------------------------------------------- evaluators


class _GenericEvaluator(Evaluator):
    """Any model: ``vmap`` of ``functional_call`` over stacked parameter sets (or a plain loop)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffers = {n: b.detach() for n, b in self.model.named_buffers()}
        self.names = list(self.centre)
        # a model's own loss is evaluated point by point (its outputs need not be (n, C) logits)
        self.use_vmap = self.batchnorm == "keep" and self.loss_fn is None
        numel = sum(p.numel() for p in self.centre.values())
        self.param_bytes = numel * next(iter(self.centre.values())).element_size()
        with torch.no_grad():
            probe = self.X[:2]
            out = torch.func.functional_call(self.model, (self.centre, self.buffers), (probe,))
        self.out_width = out.shape[-1]

    def _params(self, C: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for n in self.names:
            stacked = torch.stack([self.centre[n]] + [d[n] for d in self.directions])  # (K+1, ...)
            out[n] = (C @ stacked.reshape(stacked.shape[0], -1)).reshape(C.shape[0], *stacked.shape[1:])
        return out

    def _forward_batched(self, params, X):
        def f(p):
            return torch.func.functional_call(self.model, (p, self.buffers), (X,))

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
        correct = torch.zeros(B, dtype=torch.int64, device=dev)
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
                loss, corr = self._reduce(logits, yc)
                total += loss.to(torch.float64)
                if corr is not None:
                    correct += corr
        else:
            weight = torch.zeros(B, dtype=torch.float64, device=dev)
            for b in range(B):
                p = self._params(C[b : b + 1])
                p = {n: t[0] for n, t in p.items()}
                buffers = self._recompute_bn(p) if self.batchnorm == "recompute" else self.buffers
                for start in range(0, self.n, 4096):
                    Xc, yc = self.X[start : start + 4096], self.y[start : start + 4096]
                    out = torch.func.functional_call(self.model, (p, buffers), (Xc,))
                    if self.loss_fn is not None:
                        lw, corr, w = self._reduce_custom(out, yc)
                        total[b] += lw
                        correct[b] += corr
                        weight[b] += w
                        continue
                    loss, corr = self._reduce(out.unsqueeze(0), yc)
                    total[b] += loss[0].to(torch.float64)
                    if corr is not None:
                        correct[b] += corr[0]
            if self.loss_fn is not None:
                losses = (total / weight).cpu().numpy()
                acc = (correct.to(torch.float64) / weight).cpu().numpy() if self.classification else None
                return losses, acc
        losses = (total / self.n).cpu().numpy()
        acc = (correct.to(torch.float64) / self.n).cpu().numpy() if self.classification else None
        return losses, acc


def _make_evaluator(model, centre, directions, X, y, batchnorm, memory_budget, fast=True, loss_fn=None, accuracy_fn=None) -> Evaluator:
    if fast and loss_fn is None and MLPEvaluator.supports(model, batchnorm):
        return MLPEvaluator(model, centre, directions, X, y, batchnorm, memory_budget)
    return _GenericEvaluator(model, centre, directions, X, y, batchnorm, memory_budget, loss_fn=loss_fn, accuracy_fn=accuracy_fn)


class _PointParallel:
    """Evaluate grid points on all CPU cores by splitting each batch *between points*.

    Grid points are independent, so T single-threaded workers on T slices of a
    batch keep every core busy on full-size matrix products, whereas torch's
    intra-op threading splits each medium-sized product and loses much of the
    second core to synchronisation (measured: 0.37 of dense-GEMM peak at two
    threads, against 0.62 at one).  Torch releases the GIL inside its kernels, so
    plain threads suffice.  Used only for the MLP fast path on the CPU, whose
    evaluate() allocates everything it writes and is therefore thread-safe.
    """

    def __init__(self, ev: Evaluator, device: torch.device):
        self.ev = ev
        threads = torch.get_num_threads()
        # Opt-in (TERRAIN_POINT_PARALLEL=1): in forked processes (Celery's prefork children)
        # OpenMP used from extra threads was seen to hang, so workers keep the serial path.
        wanted = os.environ.get("TERRAIN_POINT_PARALLEL", "0") == "1"
        eligible = isinstance(ev, MLPEvaluator) and device.type == "cpu" and threads > 1
        self.workers = threads if wanted and eligible else 1
        self._pool = None
        self._threads_before = threads

    def __enter__(self):
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            torch.set_num_threads(1)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="terrain-plane")
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            torch.set_num_threads(self._threads_before)
        return False

    def _one(self, coefs: np.ndarray):
        with torch.no_grad():  # grad mode is per thread
            return self.ev.evaluate(coefs)

    def evaluate(self, coefs: np.ndarray):
        if self._pool is None or len(coefs) < 2:
            return self.ev.evaluate(coefs)
        parts = [part for part in self._split(coefs) if len(part)]
        results = list(self._pool.map(self._one, [coefs[part] for part in parts]))
        losses = np.empty(len(coefs))
        accs = None if results[0][1] is None else np.empty(len(coefs))
        for part, (loss, acc) in zip(parts, results):
            losses[part] = loss
            if accs is not None:
                accs[part] = acc
        return losses, accs

    def _split(self, coefs: np.ndarray) -> list[np.ndarray]:
        """Indices for each worker, keeping grid rows whole so they can share products."""
        rows: dict[tuple, list[int]] = {}
        for index, row in enumerate(coefs):
            rows.setdefault(tuple(row[:-1]), []).append(index)
        parts: list[list[int]] = [[] for _ in range(self.workers)]
        for members in sorted(rows.values(), key=len, reverse=True):
            min(parts, key=len).extend(members)
        if max(map(len, parts)) > 2 * (len(coefs) // self.workers + 1):  # one long row: split it instead
            return np.array_split(np.arange(len(coefs)), self.workers)
        return [np.array(part, dtype=int) for part in parts]


def _refinement_levels(nx: int, ny: int, min_lines: int) -> list[tuple[int, int]]:
    """(row stride, column stride) per level: a coarse lattice, then ever denser sets of *whole rows*.

    Whole rows let the MLP evaluator walk each row once (its cost per row barely
    depends on how many of the row's points are evaluated).
    """
    rows, cols = grid_levels(nx, min_lines), grid_levels(ny, min_lines)
    levels = [(rows[0], cols[0])] + [(s, 1) for s in rows[1:]]
    if levels[-1] != (1, 1):
        levels.append((1, 1))
    return levels


def _row_batches(todo: list[tuple[int, int]], size: int):
    """Consecutive batches of at most ``size`` points that split a grid row only when it alone is longer."""
    batch: list[tuple[int, int]] = []
    for _, row in itertools.groupby(todo, key=lambda ij: ij[0]):
        row = list(row)
        if batch and len(batch) + len(row) > size:
            yield batch
            batch = []
        while len(row) > size:
            yield row[:size]
            row = row[size:]
        batch.extend(row)
    if batch:
        yield batch


def _batch_size_for(ev: Evaluator) -> int:
    if isinstance(ev, MLPEvaluator):
        # whole grid rows, so points along a row can share products (see analysis.mlp_evaluator)
        return 64
    return 8 if ev.use_vmap else 1


def _prepare(model: nn.Module, data, device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
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
    loss_fn: Callable | None = None,
    accuracy_fn: Callable | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Loss and accuracy at ``centre + sum_k coefs[:, k] * directions[k]`` for each row of ``coefs``.

    ``model`` may be a :class:`analysis.sources.LoadedModel`, whose loss and accuracy are then used
    (``loss_fn(outputs, y) -> mean loss``, ``accuracy_fn(outputs, y) -> (correct, count) | None``
    override them; the defaults are Terrain's cross-entropy / MSE convention).
    """
    model, loss_fn, accuracy_fn = unwrap(model, loss_fn, accuracy_fn)
    work, X, y = _prepare(model, data, None)
    names = [n for n, _ in work.named_parameters()]
    c = _as_param_dict(centre, names) if centre is not None else _params_of(work)
    dirs = [{n: d[n].to(c[n]) for n in names} for d in directions]
    ev = _make_evaluator(work, c, dirs, X, y, batchnorm, memory_budget, fast, loss_fn, accuracy_fn)
    coefs = np.atleast_2d(np.asarray(coefs, dtype=np.float64))
    bs = batch_size or _batch_size_for(ev)
    losses, accs = [], []
    with torch.no_grad():
        for s in range(0, len(coefs), bs):
            l, a = ev.evaluate(coefs[s : s + bs])
            losses.append(l)
            accs.append(a)
    return np.concatenate(losses), (np.concatenate(accs) if accs and accs[0] is not None else None)


# --------------------------------------------------------------------------- plane


def _resume_arrays(resume, shape) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    if resume is None:
        return np.full(shape, np.nan), None, np.zeros(shape, dtype=bool)
    if isinstance(resume, Surface):
        loss, acc, mask = resume.loss, resume.accuracy, resume.computed
    else:
        loss, acc, mask = resume.get("loss"), resume.get("accuracy"), resume.get("computed")
    loss = np.array([[np.nan if v is None else v for v in row] for row in loss], dtype=np.float64)
    if mask is None:
        mask = ~np.isnan(loss)
    mask = np.asarray(mask, dtype=bool)
    if loss.shape != shape or mask.shape != shape:
        raise ValueError(f"resume arrays have shape {loss.shape}, expected {shape}")
    if acc is not None:
        acc = np.array([[np.nan if v is None else v for v in row] for row in acc], dtype=np.float64)
    return loss.copy(), acc, mask.copy()


def plane(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    axes: str = "random",
    resolution: int | tuple[int, int] = 51,
    span: float | tuple[tuple[float, float], tuple[float, float]] | None = None,
    seed: int = 0,
    include_bias: bool = False,
    filter_normalize: bool | None = None,
    batchnorm: str = "keep",
    trajectory: Sequence[Mapping[str, torch.Tensor]] | Any | None = None,
    trajectory_steps: Sequence[int] | None = None,
    directions: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
    hessian_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    models: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
    markers: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    resume: Any = None,
    on_progress: Callable[[dict], Any] | None = None,
    batch_size: int | None = None,
    min_lines: int = 5,
    device: str | torch.device | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    fast: bool = True,
    loss_fn: Callable | None = None,
    accuracy_fn: Callable | None = None,
) -> Surface:
    """A 2-D loss surface around ``model`` on ``data`` (see the module docstring).

    ``axes``: ``"random"``, ``"hessian"``, ``"pca"`` (needs ``trajectory``:
    a list of state dicts or a :class:`analysis.checkpoints.Trajectory`; the
    centre stays ``model``) or ``"custom"`` (give ``directions=(d1, d2)``).
    ``span`` is a number (``[-span, span]`` on both axes) or
    ``((a_min, a_max), (b_min, b_max))``; defaults: 1.0 for random and
    hessian axes, 1.25x the projected trajectory's extent for pca.
    ``hessian_data`` (default ``data``) is the data whose Hessian gives the
    axes.  ``filter_normalize`` defaults to True for random axes only.
    ``model`` may be a :class:`analysis.sources.LoadedModel` (its own loss and accuracy are used).
    """
    t0 = time.perf_counter()
    model, loss_fn, accuracy_fn = unwrap(model, loss_fn, accuracy_fn)
    if batchnorm not in ("keep", "recompute"):
        raise ValueError(f"batchnorm must be 'keep' or 'recompute', got {batchnorm!r}")
    nx, ny = _parse_resolution(resolution)
    work, X, y = _prepare(model, data, device)
    centre = _params_of(work)
    names = list(centre)
    meta: dict[str, Any] = {"kind": axes, "include_bias": include_bias}
    traj_coords = None
    steps_out = None
    default_span = 1.0
    if trajectory is not None and hasattr(trajectory, "states"):
        trajectory_steps = trajectory_steps or trajectory.steps
        trajectory = trajectory.states

    if axes == "random":
        fn = True if filter_normalize is None else filter_normalize
        d1 = random_direction(centre, seed=seed * 2 + 0, filter_normalize=fn, include_bias=include_bias)
        d2 = random_direction(centre, seed=seed * 2 + 1, filter_normalize=fn, include_bias=include_bias)
        meta.update(seed=seed, filter_normalized=fn)
    elif axes == "hessian":
        d1, d2, hmeta = hessian_directions(work, hessian_data or (X, y), seed=seed, loss_fn=loss_fn)
        meta.update(hmeta, seed=seed, filter_normalized=False)
        if filter_normalize:
            d1 = filter_normalized_direction(d1, centre, include_bias=include_bias)
            d2 = filter_normalized_direction(d2, centre, include_bias=include_bias)
            meta["filter_normalized"] = True
    elif axes == "pca":
        if trajectory is None:
            raise ValueError("axes='pca' needs trajectory= (a list of state dicts or a Trajectory)")
        states = [_as_param_dict(s, names) for s in trajectory]
        d1, d2, ratio, traj_coords = pca_directions(states, centre, include_bias=include_bias)
        meta.update(explained_variance_ratio=[float(r) for r in ratio], filter_normalized=False)
        extent = float(np.abs(traj_coords).max()) if len(traj_coords) else 1.0
        default_span = 1.25 * extent if extent > 0 else 1.0
        steps_out = list(trajectory_steps) if trajectory_steps is not None else list(range(len(states)))
    elif axes == "custom":
        if directions is None:
            raise ValueError("axes='custom' needs directions=(d1, d2)")
        d1, d2 = ({n: d[n].to(centre[n]) for n in names} for d in directions)
    elif axes == "three_models":
        from .merging import plane as three

        if models is None or len(models) != 2:
            raise ValueError("axes='three_models' needs models=(B, C): the plane's other two corners")
        b_state, c_state = (m.state_dict() if isinstance(m, nn.Module) else m for m in models)
        d1, d2 = three.three_model_directions(centre, b_state, c_state, names)
        marker_states = {"A": centre, "B": b_state, "C": c_state}
        marker_states.update({k: (v.state_dict() if isinstance(v, nn.Module) else v) for k, v in (markers or {}).items()})
        marker_list = three.project_markers(centre, d1, d2, marker_states, names)
        if span is None:
            span = three.default_span(marker_list)
        meta.update(filter_normalized=False)
    else:
        raise ValueError(f"axes must be 'random', 'hessian', 'pca', 'custom' or 'three_models', got {axes!r}")
    d1 = {n: d1[n].to(centre[n]) for n in names}
    d2 = {n: d2[n].to(centre[n]) for n in names}
    meta["norms"] = [float(_flat(d1, names).norm()), float(_flat(d2, names).norm())]
    meta["centre_norm"] = float(_flat(centre, names).norm())
    if trajectory is not None and traj_coords is None:
        # project a trajectory on non-PCA axes by least squares in the (d1, d2) basis
        B = torch.stack([_flat(d1, names), _flat(d2, names)], dim=1)
        c = _flat(centre, names)
        M = torch.stack([_flat(_as_param_dict(s, names), names) - c for s in trajectory])
        sol = torch.linalg.lstsq(B, M.T).solution.T
        traj_coords = sol.numpy()
        steps_out = list(trajectory_steps) if trajectory_steps is not None else list(range(len(trajectory)))

    (a0, a1), (b0, b1) = _parse_span(span, default_span)
    a = _axis(nx, (a0, a1))
    b = _axis(ny, (b0, b1))
    loss, acc, computed = _resume_arrays(resume, (nx, ny))
    ev = _make_evaluator(work, centre, [d1, d2], X, y, batchnorm, memory_budget, fast, loss_fn, accuracy_fn)
    if acc is None:
        acc = np.full((nx, ny), np.nan) if ev.classification else None

    bs = batch_size or _batch_size_for(ev)
    levels = _refinement_levels(nx, ny, min_lines)
    nlev = len(levels)
    total = nx * ny
    emit = on_progress or (lambda event: None)
    emit(
        {
            "type": "start",
            "a": a.tolist(),
            "b": b.tolist(),
            "total": total,
            "done": int(computed.sum()),
            "levels": nlev,
            "axes": axes,
            "directions": meta,
            "trajectory": None if traj_coords is None else traj_coords.tolist(),
            "trajectory_steps": steps_out,
            "markers": marker_list if axes == "three_models" else None,
        }
    )
    coarse_seconds = None
    parallel = _PointParallel(ev, X.device)
    bs *= parallel.workers
    with torch.no_grad(), parallel:
        for level, (sx, sy) in enumerate(levels):
            ii, jj = np.meshgrid(_axis_indices(nx, sx), _axis_indices(ny, sy), indexing="ij")
            todo = [(i, j) for i, j in zip(ii.ravel(), jj.ravel()) if not computed[i, j]]
            for batch in _row_batches(todo, bs):
                coefs = np.array([[a[i], b[j]] for i, j in batch])
                l, ac = parallel.evaluate(coefs)
                points = []
                for k, (i, j) in enumerate(batch):
                    loss[i, j] = l[k]
                    if acc is not None and ac is not None:
                        acc[i, j] = ac[k]
                    computed[i, j] = True
                    points.append(
                        {
                            "i": int(i),
                            "j": int(j),
                            "a": float(a[i]),
                            "b": float(b[j]),
                            "loss": _finite_or_none(l[k]),
                            "accuracy": None if ac is None else float(ac[k]),
                        }
                    )
                emit(
                    {
                        "type": "points",
                        "points": points,
                        "done": int(computed.sum()),
                        "total": total,
                        "level": level,
                        "levels": nlev,
                        "stride": [int(sx), int(sy)],
                    }
                )
            if level == 0:
                coarse_seconds = time.perf_counter() - t0

    # centre and trajectory values
    fns = {"loss_fn": loss_fn, "accuracy_fn": accuracy_fn}
    centre_loss, centre_acc = evaluate_points(work, (X, y), [d1, d2], np.zeros((1, 2)), fast=fast, batchnorm=batchnorm, **fns)
    traj_loss = None
    if traj_coords is not None and len(traj_coords) <= 1000:
        traj_loss, _ = evaluate_points(work, (X, y), [d1, d2], traj_coords, fast=fast, batchnorm=batchnorm, **fns)
    if axes == "three_models":
        # Loss at each marker's in-plane point (its own loss when it lies in the plane).
        coords = np.array([[m["a"], m["b"]] for m in marker_list])
        m_loss, m_acc = evaluate_points(work, (X, y), [d1, d2], coords, fast=fast, batchnorm=batchnorm, **fns)
        for k, m in enumerate(marker_list):
            m["loss"] = _finite_or_none(float(m_loss[k]))
            m["accuracy"] = None if m_acc is None else float(m_acc[k])
    return Surface(
        a=a,
        b=b,
        loss=loss,
        accuracy=acc,
        computed=computed,
        axes=axes,
        directions=meta,
        trajectory=traj_coords,
        trajectory_steps=steps_out,
        trajectory_loss=traj_loss,
        markers=marker_list if axes == "three_models" else None,
        centre_loss=float(centre_loss[0]),
        centre_accuracy=None if centre_acc is None else float(centre_acc[0]),
        num_points=total,
        seconds=time.perf_counter() - t0,
        coarse_seconds=coarse_seconds,
        d1=d1,
        d2=d2,
    )


# --------------------------------------------------------------------------- line


def line(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    end: nn.Module | Mapping[str, torch.Tensor] | None = None,
    direction: Mapping[str, torch.Tensor] | None = None,
    steps: int = 51,
    span: tuple[float, float] | float | None = None,
    seed: int = 0,
    include_bias: bool = False,
    batchnorm: str | None = None,
    on_progress: Callable[[dict], Any] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    fast: bool = True,
    loss_fn: Callable | None = None,
    accuracy_fn: Callable | None = None,
) -> Line:
    """Loss along a line: to ``end`` (another model/state) or along ``direction``.

    With ``end``: ``theta(t) = theta_a + t (theta_b - theta_a)``, ``span``
    default ``(0, 1)``; a number ``s`` is a half-width around the midpoint,
    ``t`` in ``[0.5 - s, 0.5 + s]``; ``batchnorm="interpolate"`` (default here) also
    interpolates floating-point buffers, ``"keep"`` uses ``model``'s.
    Without ``end``: ``theta(t) = theta + t d`` with ``direction`` or a seeded
    filter-normalised random direction, ``span`` default ``(-1, 1)``; a number
    ``s`` gives ``[-s, s]``.  A pair ``(t0, t1)`` is used as given.
    ``on_progress`` gets ``{"type": "points", "points": [{"k", "t", "loss",
    "accuracy"}], "done", "total"}`` events.  ``model`` (and ``end``) may be
    :class:`analysis.sources.LoadedModel` s (the model's own loss and accuracy are used).
    """
    t0 = time.perf_counter()
    model, loss_fn, accuracy_fn = unwrap(model, loss_fn, accuracy_fn)
    if end is not None and not isinstance(end, Mapping):
        end, _, _ = unwrap(end)
    if not 2 <= steps <= 10_001:
        raise ValueError("steps must be between 2 and 10001")
    work, X, y = _prepare(model, data, device)
    centre = _params_of(work)
    names = list(centre)
    meta: dict[str, Any] = {}
    if end is not None:
        kind = "interpolation"
        mode = batchnorm or "interpolate"
        end_state = end.state_dict() if isinstance(end, nn.Module) else dict(end)
        d = {n: end_state[n].detach().to(centre[n]) - centre[n] for n in names}
        if isinstance(span, (tuple, list)):
            lo, hi = span
        elif span is None:
            lo, hi = 0.0, 1.0
        else:  # a half-width around the segment's midpoint: 0.5 is the plain segment
            lo, hi = 0.5 - float(span), 0.5 + float(span)
        meta["distance"] = float(_flat(d, names).norm())
    else:
        kind = "direction"
        mode = batchnorm or "keep"
        if direction is None:
            d = random_direction(centre, seed=seed, include_bias=include_bias)
            meta.update(seed=seed, filter_normalized=True)
        else:
            d = {n: direction[n].to(centre[n]) for n in names}
        lo, hi = span if isinstance(span, (tuple, list)) else (-1.0, 1.0) if span is None else (-float(span), float(span))
        meta["norm"] = float(_flat(d, names).norm())
    if mode not in ("keep", "recompute", "interpolate"):
        raise ValueError(f"batchnorm must be 'keep', 'recompute' or 'interpolate', got {mode!r}")
    t = np.linspace(float(lo), float(hi), steps)
    emit = on_progress or (lambda event: None)
    losses = np.full(steps, np.nan)
    accs = np.full(steps, np.nan) if metrics.is_classification(y) and (loss_fn is None or accuracy_fn is not None) else None
    fns = {"loss_fn": loss_fn, "accuracy_fn": accuracy_fn}
    # non-persistent buffers (rotary tables, causal masks) are not in a state dict and stay as they are
    float_buffers = [n for n, b in work.named_buffers() if b.is_floating_point() and (end is None or n in end_state)]
    if mode == "interpolate" and end is not None and float_buffers:
        # buffers differ per point: evaluate one point at a time on interpolated buffers
        start_buf = {n: b.clone() for n, b in work.named_buffers()}
        for k, tk in enumerate(t):
            for n, b in work.named_buffers():
                if n in float_buffers:
                    b.copy_(start_buf[n] + float(tk) * (end_state[n].to(b) - start_buf[n]))
            l, a = evaluate_points(work, (X, y), [d], np.array([[tk]]), centre=centre, fast=fast, **fns)
            losses[k] = l[0]
            if accs is not None:
                accs[k] = a[0]
            emit({"type": "points", "points": [_line_point(k, tk, l[0], a)], "done": k + 1, "total": steps})
    else:
        ev = _make_evaluator(work, centre, [d], X, y, "keep" if mode == "interpolate" else mode, DEFAULT_MEMORY_BUDGET, fast, loss_fn, accuracy_fn)
        bs = batch_size or _batch_size_for(ev)
        with torch.no_grad():
            for s in range(0, steps, bs):
                idx = np.arange(s, min(steps, s + bs))
                l, a = ev.evaluate(t[idx, None])
                losses[idx] = l
                if accs is not None:
                    accs[idx] = a
                emit(
                    {
                        "type": "points",
                        "points": [_line_point(int(k), t[k], l[m], None if a is None else a[m : m + 1]) for m, k in enumerate(idx)],
                        "done": int(idx[-1]) + 1,
                        "total": steps,
                    }
                )
    return Line(t=t, loss=losses, accuracy=accs, kind=kind, directions=meta, seconds=time.perf_counter() - t0)


def _line_point(k, tk, loss, acc) -> dict:
    return {"k": int(k), "t": float(tk), "loss": _finite_or_none(loss), "accuracy": None if acc is None else float(acc[0])}
