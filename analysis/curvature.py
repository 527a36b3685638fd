"""Curvature: Hessian operators and the spectral algorithms that use them.

The split follows hessian-eigenthings / curvlinops: an *operator*
(:mod:`analysis.curvature_operators`, whose names are exported here too) knows how
to multiply a vector by a symmetric matrix (and counts how often it did), and the
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
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .curvature_operators import DenseOperator, HessianOperator, Operator, dense_matrix

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
    "density_probe",
    "density_from_probes",
    "dense_matrix",
    "analyze",
]


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
    points.  The density is normalised to integrate to 1 on the grid.  Probe
    ``p`` depends only on ``(seed, p)`` (:func:`density_probe`), so probes run
    apart and combined by :func:`density_from_probes` give the same density.
    """
    start = op.num_matvecs
    probes = [density_probe(op, probe=p, num_iters=num_iters, seed=seed) for p in range(num_probes)]
    return density_from_probes([n for n, _ in probes], [w for _, w in probes], num_points=num_points, sigma=sigma,
                               num_matvecs=op.num_matvecs - start)


def density_probe(op: Operator, *, probe: int, num_iters: int = 60, seed: int = 0,
                  on_step: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values and quadrature weights of SLQ probe number ``probe`` (``min(num_iters, n)`` each, zero-padded).

    Its random numbers come from a generator seeded by ``(seed, probe)`` alone, whichever
    probes run before it or elsewhere.  ``on_step(j)`` is called after each Lanczos step.
    """
    gen = _generator(int(np.random.SeedSequence([int(seed) % 2**64, int(probe)]).generate_state(1, np.uint64)[0] >> 1))
    m = min(num_iters, op.size)
    nodes, weights = np.zeros(m), np.zeros(m)
    v = _rademacher((op.size,), gen, op)
    stop = None if on_step is None else (lambda j, *rest: on_step(j) or False)
    _, alphas, betas, _ = _lanczos_tridiagonal(op, v, m, gen, stop=stop)
    evals, evecs = _tridiag_eigh(alphas, betas)
    nodes[: len(evals)] = evals
    weights[: len(evals)] = evecs[0, :] ** 2
    return nodes, weights


def density_from_probes(nodes, weights, *, num_points: int = 512, sigma: float | None = None,
                        num_matvecs: int = 0) -> SpectralDensity:
    """The density of :func:`spectral_density` from its probes' ``density_probe`` results (in probe order)."""
    all_nodes, all_weights = np.asarray(nodes, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    num_probes = len(all_nodes)
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
    return SpectralDensity(grid, density, all_nodes, all_weights, float(sigma), int(num_matvecs))


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
