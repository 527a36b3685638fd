"""Independent cues in the weights about how two models are related.

Each cue is measured on its own and means one thing:

- ``model_stats``: per model, weight kurtosis and whether the weights sit on
  a coarse grid (a quantised model: few levels per row, spaced by one step).
- ``adapter_evidence``: per edge, whether the update is low rank in every
  matrix it touches and leaves vectors alone (a merged LoRA adapter).
- ``merge_fits``: per model, the best convex combination of two others,
  solved by least squares on the flattened weights (a merge has two parents).
- ``parent_preference``: per model, which tree neighbour looks like its
  parent.  Independent fine-tunes of one parent move in nearly orthogonal
  (or mildly aligned) directions, so seen from a parent its children's
  deltas have cosine >= 0 with each other; seen from a model in the middle
  of a chain ``a -> v -> b``, the step back to ``a`` undoes v's own update
  while the step on to ``b`` adds a new one, so their cosine is negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import kurtosis as scipy_kurtosis

StateDict = Mapping[str, torch.Tensor]

GRID_CHUNK = 32  # values tested together for a common step (inside one quantisation group)
MAX_CHUNKS = 2048  # per tensor; spread evenly, enough to tell a grid from noise
MAX_GRID_LEVELS = 257  # more levels than 8-bit is not a coarse grid
MAX_SVD_SIDE = 384  # rows and columns kept (evenly spaced) for a matrix's spectrum: large matrices stay cheap


def spectral_entropy(rows: torch.Tensor) -> float:
    """Entropy of ``s / sum(s)`` over a matrix's singular values: higher when the spectrum is flatter.

    A short fine-tune adds an update that is less structured than what its
    parent learned, so the spectrum flattens and the entropy rises.
    """
    if rows.shape[0] > MAX_SVD_SIDE:
        rows = rows[torch.linspace(0, rows.shape[0] - 1, MAX_SVD_SIDE).long()]
    if rows.shape[1] > MAX_SVD_SIDE:
        rows = rows[:, torch.linspace(0, rows.shape[1] - 1, MAX_SVD_SIDE).long()]
    s = torch.linalg.svdvals(rows.to(torch.float32)).to(torch.float64)
    p = s / s.sum().clamp_min(1e-300)
    return float(-(p * torch.log(p.clamp_min(1e-300))).sum())


@dataclass(frozen=True)
class ModelStats:
    kurtosis: float  # excess kurtosis of all float values together
    grid_fraction: float  # share of matrix values (by chunk) on a coarse grid
    bits: int | None  # estimated bits per weight when quantised
    spectral_entropy: float = 0.0  # mean over matrices of the entropy of their normalised singular values

    @property
    def quantized(self) -> bool:
        return self.grid_fraction >= 0.9


def _grid_levels(values: np.ndarray) -> np.ndarray:
    """Per chunk (row of ``values``): number of grid levels spanned if on a grid, else inf."""
    v = np.sort(values, axis=1)
    diffs = np.diff(v, axis=1)
    scale = np.abs(v).max(axis=1, keepdims=True)
    positive = np.where(diffs > 1e-9 * np.maximum(scale, 1e-30), diffs, np.inf)
    d_min = positive.min(axis=1, keepdims=True)
    levels = np.full(len(values), np.inf)
    finite = np.isfinite(d_min[:, 0]) & (np.isfinite(positive).sum(axis=1) >= 4)
    if not finite.any():
        return levels
    span = (v[:, -1] - v[:, 0])[:, None]
    # The smallest gap may be several steps when neighbouring levels are unused.
    for m in range(1, 9):
        step = d_min / m
        ratio = diffs / step
        on = np.abs(ratio - np.round(ratio)) < 0.02
        ok = finite & on.all(axis=1) & np.isinf(levels)
        levels[ok] = (span[ok, 0] / step[ok, 0]) + 1
    return levels


def model_stats(state: StateDict, keys: Iterable[str]) -> ModelStats:
    keys = list(keys)
    # Every float value in one float64 array (filled in place: one copy of the model), for scipy's kurtosis.
    values = np.empty(sum(int(state[k].numel()) for k in keys))
    start = 0
    on_grid = tested = 0
    max_levels = 0.0
    entropies = []
    for k in keys:
        t = state[k].detach().to("cpu", torch.float64).reshape(-1)
        x = t.numpy()
        values[start:start + x.size] = x
        start += x.size
        if state[k].dim() < 2 or x.size < 4 * GRID_CHUNK:
            continue
        rows_t = state[k].detach().to("cpu", torch.float64).reshape(state[k].shape[0], -1)
        entropies.append(spectral_entropy(rows_t))
        rows = rows_t.numpy()
        width = rows.shape[1]
        chunk = GRID_CHUNK if width % GRID_CHUNK == 0 else width
        chunks = rows.reshape(-1, chunk)
        if len(chunks) > MAX_CHUNKS:
            chunks = chunks[np.linspace(0, len(chunks) - 1, MAX_CHUNKS).astype(int)]
        levels = _grid_levels(chunks)
        ok = levels <= MAX_GRID_LEVELS
        on_grid += int(ok.sum()) * chunks.shape[1]
        tested += chunks.size
        if ok.any():
            max_levels = max(max_levels, float(levels[ok].max()))
    # Excess kurtosis (0 for a Gaussian); a constant model has none, reported as 0.
    kurt = float(scipy_kurtosis(values, fisher=True, bias=True)) if values.size and np.ptp(values) > 0 else 0.0
    fraction = on_grid / tested if tested else 0.0
    bits = int(np.ceil(np.log2(max(max_levels, 2.0)))) if fraction >= 0.9 else None
    return ModelStats(kurtosis=kurt, grid_fraction=fraction, bits=bits,
                      spectral_entropy=float(np.mean(entropies)) if entropies else 0.0)


@dataclass(frozen=True)
class AdapterEvidence:
    low_rank_share: float  # share (by size) of the changed matrices whose update has low rank
    vectors_changed: float  # share (by size) of 1-d tensors (biases, norms) that changed
    max_rank: int  # largest effective rank among the changed matrices

    @property
    def is_adapter(self) -> bool:
        return self.low_rank_share >= 0.5 and self.vectors_changed < 0.5


def effective_rank(delta: torch.Tensor, energy: float = 0.999) -> int:
    """Fewest singular values holding ``energy`` of the update's squared norm."""
    s = torch.linalg.svdvals(delta.to(torch.float64))
    e = torch.cumsum(s**2, 0)
    if e[-1] <= 0:
        return 0
    return int(torch.searchsorted(e, energy * e[-1]).item()) + 1


def adapter_evidence(parent: StateDict, child: StateDict, keys: Iterable[str]) -> AdapterEvidence:
    low = changed = vec_changed = vec_total = 0
    max_rank = 0
    for k in keys:
        a = parent[k].detach().to("cpu", torch.float64)
        b = child[k].detach().to("cpu", torch.float64)
        delta = b - a
        moved = bool((delta.abs() > 1e-7 * a.abs().max().clamp_min(1e-12)).any())
        if a.dim() < 2:
            vec_total += a.numel()
            vec_changed += a.numel() if moved else 0
            continue
        if not moved:
            continue
        m = delta.reshape(delta.shape[0], -1)
        rank = effective_rank(m)
        max_rank = max(max_rank, rank)
        changed += m.numel()
        if rank <= max(1, min(m.shape) // 4):
            low += m.numel()
    return AdapterEvidence(low_rank_share=low / changed if changed else 0.0,
                           vectors_changed=vec_changed / vec_total if vec_total else 0.0, max_rank=max_rank)


@dataclass(frozen=True)
class MergeFit:
    child: int
    parents: tuple[int, int]
    alpha: float  # weight of parents[0]
    relative_residual: float  # |child - fit| / distance to the nearer parent


def merge_fits(gram: np.ndarray, candidates: np.ndarray, distances: np.ndarray, *, neighbours: int = 8
               ) -> list[MergeFit]:
    """For each candidate, the best ``alpha * a + (1 - alpha) * b`` over pairs of its nearest candidates.

    Least squares in closed form from inner products:
    ``alpha = <v - b, a - b> / |a - b|^2``, kept only inside (0.02, 0.98): a
    convex combination, so a parent is never "explained" by its own merge.
    """
    fits = []
    for v in candidates:
        others = candidates[candidates != v]
        near = others[np.argsort(distances[v, others])[:neighbours]]
        best: MergeFit | None = None
        for i, a in enumerate(near):
            for b in near[i + 1:]:
                ab = gram[a, a] + gram[b, b] - 2 * gram[a, b]
                if ab <= 0:
                    continue
                vb_ab = gram[v, a] - gram[v, b] - gram[b, a] + gram[b, b]
                alpha = vb_ab / ab
                if not 0.02 < alpha < 0.98:
                    continue
                vb2 = gram[v, v] + gram[b, b] - 2 * gram[v, b]
                residual = np.sqrt(max(vb2 - alpha**2 * ab, 0.0))
                rel = residual / max(min(distances[v, a], distances[v, b]), 1e-300)
                if best is None or rel < best.relative_residual:
                    best = MergeFit(int(v), (int(a), int(b)), float(alpha), float(rel))
        if best is not None:
            fits.append(best)
    return fits


def delta_cosine(gram: np.ndarray, v: int, a: int, b: int) -> float:
    """Cosine between ``a - v`` and ``b - v``, from inner products."""
    ab = gram[a, b] - gram[a, v] - gram[b, v] + gram[v, v]
    aa = gram[a, a] - 2 * gram[a, v] + gram[v, v]
    bb = gram[b, b] - 2 * gram[b, v] + gram[v, v]
    return float(ab / np.sqrt(max(aa * bb, 1e-300)))


CHAIN_COSINE = 0.25  # typical cosine between the updates of a parent -> child -> grandchild chain
SIBLING_COSINE = 0.05  # typical cosine between two siblings' updates (nearly orthogonal)


def parent_preference(gram: np.ndarray, neighbours: Mapping[int, list[int]]) -> dict[tuple[int, int], float]:
    """``pref[(u, v)]``: log-likelihood ratio that tree neighbour ``u`` is ``v``'s parent rather than v a root.

    Seen from v, every pair of its tree neighbours is either a chain pair
    (one of them is v's parent: the updates ``v - u`` and ``x - v`` follow
    each other, cosine about ``CHAIN_COSINE``) or a sibling pair (both are
    v's children: cosine about ``SIBLING_COSINE``).  With Gaussian scatter
    of equal width around those, each chain pair contributes
    ``(c - s)^2 - (c - m)^2`` (``c`` the observed cosine of the two updates,
    ``m``/``s`` the chain/sibling means).  A leaf has no pairs and no opinion.
    Each term depends only on v and its parent, so a rooting's total is a
    sum over its edges: the best rooting is a maximum spanning arborescence.
    """
    pref = {}
    for v, nbrs in neighbours.items():
        for u in nbrs:
            total = 0.0
            for x in nbrs:
                if x != u:
                    c = -delta_cosine(gram, v, u, x)  # cosine of the updates u -> v and v -> x
                    total += (c - SIBLING_COSINE) ** 2 - (c - CHAIN_COSINE) ** 2
            pref[(u, v)] = total / (CHAIN_COSINE - SIBLING_COSINE) / 2.0
    return pref
