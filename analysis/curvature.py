"""Curvature: Hessian operators and the spectral algorithms that use them.

The split follows hessian-eigenthings / curvlinops: an *operator* knows how to
multiply a vector by a symmetric matrix (and counts how often it did), and the
algorithms take any operator:

* :class:`HessianOperator` -- Hessian of the mean training loss of a model
  with respect to its parameters, applied by double backward (or
  forward-over-reverse with ``torch.func``) without ever forming the matrix.
* :class:`DenseOperator` -- an explicit symmetric matrix (for tests and small
  problems).
* :func:`lanczos` -- top-k eigenpairs by Lanczos with full
  reorthogonalisation (seeded start vector).
* :func:`hutchinson` and :func:`hutchpp` -- stochastic trace estimates with
  a standard-error estimate.
* :func:`spectral_density` -- stochastic Lanczos quadrature (SLQ) estimate
  of the eigenvalue density.
* :func:`analyze` -- all of the above for a model, as the JSON-able
  ``curvature_results.HessianSpectrum``.

Every operator exposes ``size`` (dimension), ``dtype``, ``device``,
``matvec(v)`` for a 1-D tensor ``v`` and the counter ``num_matvecs``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol

import numpy as np
import torch
from torch import nn

from . import metrics

__all__ = [
    "Operator",
    "DenseOperator",
    "HessianOperator",
    "EigenResult",
    "TraceEstimate",
    "SpectralDensity",
    "lanczos",
    "hutchinson",
    "hutchpp",
    "spectral_density",
    "dense_matrix",
    "analyze",
]


class Operator(Protocol):
    size: int
    dtype: torch.dtype
    device: torch.device
    num_matvecs: int

    def matvec(self, v: torch.Tensor) -> torch.Tensor: ...


# --------------------------------------------------------------------------- operators


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
        model, loss_fn, _ = unwrap(model, loss_fn)  # a LoadedModel brings its own loss
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
        for start in range(0, self.n, self.batch_size):
            Xc, yc = self.X[start : start + self.batch_size], self.y[start : start + self.batch_size]
            yield Xc, yc, Xc.shape[0] / self.n

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


# --------------------------------------------------------------------------- results


@dataclass
class EigenResult:
    eigenvalues: np.ndarray  # (k,), descending
    eigenvectors: torch.Tensor  # (n, k), orthonormal columns
    residuals: np.ndarray  # (k,), ||A v - lambda v|| bound from the Lanczos recurrence
    num_matvecs: int
    iterations: int
    converged: bool
    seconds: float = 0.0


@dataclass
class TraceEstimate:
    estimate: float
    stderr: float
    num_matvecs: int
    method: str
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class SpectralDensity:
    grid: np.ndarray
    density: np.ndarray  # integrates to ~1 over grid
    nodes: np.ndarray  # (num_probes, m) Ritz values
    weights: np.ndarray  # (num_probes, m) quadrature weights (each row sums to 1)
    sigma: float
    num_matvecs: int


# --------------------------------------------------------------------------- helpers


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _randn(n: int, gen: torch.Generator, op: Operator) -> torch.Tensor:
    return torch.randn(n, generator=gen, dtype=torch.float64).to(device=op.device, dtype=op.dtype)


def _rademacher(shape, gen: torch.Generator, op: Operator) -> torch.Tensor:
    return (torch.randint(0, 2, shape, generator=gen, dtype=torch.int64) * 2 - 1).to(device=op.device, dtype=op.dtype)


def _lanczos_tridiagonal(
    op: Operator,
    v0: torch.Tensor,
    m: int,
    gen: torch.Generator,
    stop: Callable[[int, np.ndarray, np.ndarray, float], bool] | None = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, float]:
    """Lanczos with full reorthogonalisation.

    Returns (Q (n, j), alphas (j,), betas (j-1,), last beta).  ``stop`` is asked
    after each step with (j, alphas, betas, beta_j) and may end early.  On
    breakdown (an invariant subspace was found) it restarts with a random
    vector orthogonal to the basis, so repeated eigenvalues are not missed.
    """
    n = op.size
    m = min(m, n)
    # basis vectors are stored as contiguous rows: column slices of an (n, m) matrix made every
    # reorthogonalisation stream the whole matrix (minutes for a 22M-parameter BERT)
    Q = torch.empty(m, n, dtype=op.dtype, device=op.device)  # rows are written before they are read
    alphas: list[float] = []
    betas: list[float] = []
    q = v0 / v0.norm()
    beta_prev = 0.0
    q_prev = torch.zeros_like(q)
    beta = 0.0
    for j in range(m):
        Q[j] = q
        w = op.matvec(q)
        alpha = float(torch.dot(q, w))
        w = w - alpha * q - beta_prev * q_prev
        # full reorthogonalisation, twice ("twice is enough")
        for _ in range(2):
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta = float(w.norm())
        alphas.append(alpha)
        if stop is not None and stop(j + 1, np.array(alphas), np.array(betas), beta):
            return Q[: j + 1].T, np.array(alphas), np.array(betas), beta
        if j == m - 1:
            break
        scale = max(abs(a) for a in alphas) or 1.0
        if beta <= 1e-10 * scale:
            # invariant subspace: continue from a fresh random direction (beta = 0 decouples T)
            r = _randn(n, gen, op)
            for _ in range(2):
                r = r - Q[: j + 1].T @ (Q[: j + 1] @ r)
            if float(r.norm()) < 1e-12:
                return Q[: j + 1].T, np.array(alphas), np.array(betas), 0.0
            betas.append(0.0)
            q_prev, q, beta_prev = q, r / r.norm(), 0.0
        else:
            betas.append(beta)
            q_prev, q, beta_prev = q, w / beta, beta
    return Q[: len(alphas)].T, np.array(alphas), np.array(betas), beta


def _tridiag_eigh(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    T = np.diag(alphas.astype(np.float64))
    if len(betas):
        T += np.diag(betas, 1) + np.diag(betas, -1)
    return np.linalg.eigh(T)


def _select(evals: np.ndarray, k: int, which: str) -> np.ndarray:
    if which == "LA":
        return np.argsort(-evals)[:k]
    if which == "LM":
        return np.argsort(-np.abs(evals))[:k]
    if which == "SA":
        return np.argsort(evals)[:k]
    raise ValueError(f"which must be 'LA', 'LM' or 'SA', got {which!r}")


# --------------------------------------------------------------------------- algorithms


def lanczos(
    op: Operator,
    k: int = 1,
    *,
    max_iters: int | None = None,
    tol: float = 1e-6,
    seed: int = 0,
    which: str = "LA",
    v0: torch.Tensor | None = None,
) -> EigenResult:
    """Top-``k`` eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

    ``which``: ``"LA"`` largest algebraic (default), ``"LM"`` largest magnitude,
    ``"SA"`` smallest algebraic.  Stops when every wanted Ritz pair has residual
    ``|beta_j * s_j| <= tol * max(|theta|, tiny)``; since ``|lambda - theta| <=
    residual`` for symmetric operators, ``tol`` bounds the relative eigenvalue
    error.  ``max_iters`` defaults to ``min(n, max(4k + 40, 60))``; memory is
    ``n * max_iters`` numbers.  The start vector is ``v0`` if given (a warm
    start, e.g. the previous top eigenvector while the operator drifts slowly),
    else a seeded Gaussian.
    """
    t0 = time.perf_counter()
    n = op.size
    k = int(k)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and {n}, got {k}")
    m = min(n, max_iters if max_iters is not None else max(4 * k + 40, 60))
    m = max(m, k)
    gen = _generator(seed)
    start = op.num_matvecs
    state: dict = {}

    def stop(j: int, alphas: np.ndarray, betas: np.ndarray, beta: float) -> bool:
        if j < k:
            return False
        if beta <= 1e-10 * (np.abs(alphas).max() or 1.0) and j < n:
            # breakdown: the Krylov space is invariant, so residuals are zero even if a
            # repeated eigenvalue is still missing; let the restart explore further
            return False
        evals, evecs = _tridiag_eigh(alphas, betas)
        idx = _select(evals, k, which)
        res = np.abs(beta * evecs[-1, idx])
        scale = np.maximum(np.abs(evals[idx]), np.abs(evals).max() * 1e-12 + 1e-300)
        state["res"] = res
        return bool(np.all(res <= tol * scale)) or j == n

    start_vector = _randn(n, gen, op) if v0 is None else v0.detach().to(device=op.device, dtype=op.dtype).reshape(-1)
    if start_vector.shape != (n,) or not bool(torch.isfinite(start_vector).all()) or float(start_vector.norm()) == 0.0:
        raise ValueError(f"v0 must be a finite non-zero vector of size {n}")
    Q, alphas, betas, beta = _lanczos_tridiagonal(op, start_vector, m, gen, stop)
    evals, evecs = _tridiag_eigh(alphas, betas)
    idx = _select(evals, k, which)
    res = np.abs(beta * evecs[-1, idx])
    scale = np.maximum(np.abs(evals[idx]), np.abs(evals).max() * 1e-12 + 1e-300)
    converged = bool(np.all(res <= tol * scale)) or Q.shape[1] == n
    S = torch.as_tensor(evecs[:, idx], dtype=op.dtype, device=op.device)
    vectors = Q @ S
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    return EigenResult(
        eigenvalues=evals[idx].copy(),
        eigenvectors=vectors,
        residuals=res,
        num_matvecs=op.num_matvecs - start,
        iterations=Q.shape[1],
        converged=converged,
        seconds=time.perf_counter() - t0,
    )


def hutchinson(op: Operator, num_samples: int, seed: int = 0) -> TraceEstimate:
    """Hutchinson's trace estimate ``mean(z^T A z)`` with Rademacher ``z``.

    ``stderr`` is the sample standard deviation over ``sqrt(num_samples)``.
    """
    if num_samples < 1:
        raise ValueError("num_samples must be at least 1")
    gen = _generator(seed)
    start = op.num_matvecs
    samples = np.empty(num_samples)
    for i in range(num_samples):
        z = _rademacher((op.size,), gen, op)
        samples[i] = float(torch.dot(z, op.matvec(z)))
    stderr = float(samples.std(ddof=1) / math.sqrt(num_samples)) if num_samples > 1 else float("nan")
    return TraceEstimate(float(samples.mean()), stderr, op.num_matvecs - start, "hutchinson", samples)


def hutchpp(op: Operator, num_matvecs: int, seed: int = 0) -> TraceEstimate:
    """Hutch++ trace estimate (Meyer, Musco, Musco & Woodruff 2021) with ``num_matvecs`` products.

    A third of the budget sketches the top of the spectrum (``Q = orth(A S)``),
    a third computes ``tr(Q^T A Q)`` exactly, and the rest runs Hutchinson on
    the deflated remainder ``(I - QQ^T) A (I - QQ^T)``.  ``stderr`` is the
    standard error of that Hutchinson part (the deflated part is exact).
    """
    if num_matvecs < 3:
        raise ValueError("hutchpp needs at least 3 matrix-vector products")
    gen = _generator(seed)
    start = op.num_matvecs
    n = op.size
    s = max(1, min(num_matvecs // 3, n))
    g = num_matvecs - 2 * s
    S = _rademacher((n, s), gen, op)
    AS = torch.stack([op.matvec(S[:, i]) for i in range(s)], dim=1)
    Q, _ = torch.linalg.qr(AS)
    AQ = torch.stack([op.matvec(Q[:, i]) for i in range(Q.shape[1])], dim=1)
    t_top = float(torch.trace(Q.T @ AQ))
    samples = np.zeros(max(g, 0))
    for i in range(g):
        z = _rademacher((n,), gen, op)
        z = z - Q @ (Q.T @ z)
        samples[i] = float(torch.dot(z, op.matvec(z)))
    t_rest = float(samples.mean()) if g else 0.0
    stderr = float(samples.std(ddof=1) / math.sqrt(g)) if g > 1 else float("nan")
    return TraceEstimate(t_top + t_rest, stderr, op.num_matvecs - start, "hutch++", samples)


def spectral_density(
    op: Operator,
    *,
    num_probes: int = 4,
    num_iters: int = 60,
    num_points: int = 512,
    sigma: float | None = None,
    seed: int = 0,
) -> SpectralDensity:
    """Eigenvalue density by stochastic Lanczos quadrature (Lin, Saad & Yang 2016; Ghorbani et al. 2019).

    Each of ``num_probes`` Rademacher probes runs ``num_iters`` Lanczos steps;
    the Ritz values ``theta_i`` with weights ``tau_i = s_{1i}^2`` form a
    quadrature rule for the spectral measure, smoothed by a Gaussian of width
    ``sigma`` (default: 1% of the spectral range) onto ``num_points`` grid
    points.  The density is normalised to integrate to 1 on the grid.
    """
    gen = _generator(seed)
    start = op.num_matvecs
    m = min(num_iters, op.size)
    all_nodes = np.zeros((num_probes, m))
    all_weights = np.zeros((num_probes, m))
    for p in range(num_probes):
        v = _rademacher((op.size,), gen, op)
        _, alphas, betas, _ = _lanczos_tridiagonal(op, v, m, gen)
        evals, evecs = _tridiag_eigh(alphas, betas)
        j = len(evals)
        all_nodes[p, :j] = evals
        all_weights[p, :j] = evecs[0, :] ** 2
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    width = hi - lo if hi > lo else max(abs(hi), 1.0)
    if sigma is None:
        sigma = 0.01 * width
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points)
    diff = grid[None, None, :] - all_nodes[:, :, None]
    kern = np.exp(-0.5 * (diff / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    density = (all_weights[:, :, None] * kern).sum(axis=(0, 1)) / num_probes
    area = np.trapezoid(density, grid)
    if area > 0:
        density = density / area
    return SpectralDensity(grid, density, all_nodes, all_weights, float(sigma), op.num_matvecs - start)


# --------------------------------------------------------------------------- convenience


def analyze(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    top_k: int = 5,
    trace: bool = True,
    trace_matvecs: int = 60,
    density: bool = False,
    density_probes: int = 4,
    density_iters: int = 60,
    tol: float = 1e-4,
    seed: int = 0,
    batch_size: int | None = None,
    on_progress: Callable[[dict], object] | None = None,
    loss_fn: Callable | None = None,
) -> dict:
    """Top-k eigenvalues, trace (Hutch++) and optional density of ``model``'s loss Hessian.

    Returns ``curvature_results.HessianSpectrum`` as a JSON-able dict
    ``{"num_parameters", "loss", "eigenvalues": {"values", "residuals",
    "converged", "num_matvecs"}, "trace": {"estimate", "stderr",
    "num_matvecs", "method"} | None, "density": {"grid", "density", "sigma",
    "num_matvecs"} | None, "num_matvecs", "seconds"}``.  ``on_progress`` receives
    ``{"type": "stage", "stage": "eigenvalues"|"trace"|"density", "done": bool, ...}``.
    """
    t0 = time.perf_counter()
    op = HessianOperator(model, loss_fn, data, batch_size=batch_size)  # a LoadedModel brings its own loss
    emit = on_progress or (lambda event: None)
    from .curvature_results import Density, Eigenvalues, HessianSpectrum, Trace
    from .json_safe import finite_or_none

    loss = finite_or_none(op.loss())
    emit({"type": "stage", "stage": "eigenvalues", "done": False})
    eigenvalues = Eigenvalues.of(lanczos(op, top_k, tol=tol, seed=seed))
    emit({"type": "stage", "stage": "eigenvalues", "done": True, "eigenvalues": eigenvalues.values})
    trace_result = density_result = None
    if trace:
        emit({"type": "stage", "stage": "trace", "done": False})
        trace_result = Trace.of(hutchpp(op, trace_matvecs, seed=seed))
        emit({"type": "stage", "stage": "trace", "done": True, "trace": trace_result.model_dump()})
    if density:
        emit({"type": "stage", "stage": "density", "done": False})
        density_result = Density.of(spectral_density(op, num_probes=density_probes, num_iters=density_iters, seed=seed))
        emit({"type": "stage", "stage": "density", "done": True})
    return HessianSpectrum(num_parameters=op.size, loss=loss, eigenvalues=eigenvalues, trace=trace_result,
                           density=density_result, num_matvecs=op.num_matvecs, seconds=time.perf_counter() - t0).model_dump()
