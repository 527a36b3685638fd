"""Directions in parameter space: seeded filter-normalised random directions (Li et al. 2018),
PCA of a training trajectory, and top Hessian eigenvectors, as ``{name: tensor}`` dicts."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn


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
        raise ValueError(
            f"PCA axes need a trajectory of at least 3 states, this one has {len(states)}: train with --snapshot-every N "
            "(snapshot_every=N in analysis.train.train) to keep a snapshot every N steps"
        )
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
    from .sources.base import unwrap

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
