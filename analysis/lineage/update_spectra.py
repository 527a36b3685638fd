"""How far apart two relatives are, measured on the singular values of the update between them.

A fine-tune changes each weight matrix by an update of low effective rank
(the reason LoRA works; Hu et al. 2021, Aghajanyan et al. 2021).  Two
updates made independently (a parent's and then its child's) occupy
different subspaces, so the singular values of their sum are roughly the
union of theirs.  Under the Euclidean (Frobenius) distance such updates add
in quadrature: seen from a grandchild, the grandparent is only
``|u_child|^2 / (2 |u_grandchild|)`` further away than the parent, a
second-order margin that correlated updates (a shared SGD drift, similar
tasks) easily overturn, and the spanning tree then hangs models off their
cousins or grandparents.  A Schatten quasi-norm with p < 1, ``(sum_i
s_i^p)^(1/p)``, is closer to additive over such sums (at p -> 0 it counts
the rank), so the path through the true parent stays the short one by a
first-order margin.  p = 1/2 per matrix, summed over tensors; a vector
(bias, norm gain) counts by its Euclidean norm (a vector is rank one).

Cost: one SVD per matrix per measured pair.  Large matrices are reduced to
evenly spaced rows and columns (``MAX_SIDE``; a low-rank update keeps its
rank) and rescaled; unchanged tensors are skipped; in large families only
pairs of near neighbours (by the Euclidean distance) are measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx
import numpy as np
import torch

StateDict = Mapping[str, torch.Tensor]

SCHATTEN_P = 0.5
MAX_SIDE = 384  # rows and columns kept per matrix
NEIGHBOURS = 12  # Euclidean nearest neighbours whose distance is measured, per model, in large families


def _evenly(n: int, keep: int) -> torch.Tensor:
    return torch.linspace(0, n - 1, keep).round().long()


def schatten_size(delta: torch.Tensor, p: float = SCHATTEN_P) -> float:
    """``(sum_i s_i^p)^(1/p)`` over the singular values of ``delta`` as a matrix (rows = first axis)."""
    if delta.dim() < 2:
        return float(delta.double().norm())
    m = delta.reshape(delta.shape[0], -1).double()
    scale = 1.0
    rows, cols = m.shape
    if rows > MAX_SIDE:
        m, scale = m[_evenly(rows, MAX_SIDE)], scale * rows / MAX_SIDE
    if cols > MAX_SIDE:
        m, scale = m[:, _evenly(cols, MAX_SIDE)], scale * cols / MAX_SIDE
    s = torch.linalg.svdvals(m)
    # Keeping a share f of the entries of a low-rank matrix scales its singular values by about sqrt(f).
    return float((s**p).sum() ** (1.0 / p)) * float(np.sqrt(scale))


def update_distance(a: StateDict, b: StateDict, keys: Iterable[str]) -> float:
    """Sum over tensors of the Schatten-1/2 size of ``b - a``."""
    total = 0.0
    for k in keys:
        x, y = a[k], b[k]
        if torch.equal(x, y):
            continue
        total += schatten_size(y.detach().to("cpu", torch.float64) - x.detach().to("cpu", torch.float64))
    return total


def candidate_pairs(euclidean: np.ndarray, members: list[int], neighbours: int = NEIGHBOURS) -> set[tuple[int, int]]:
    """Pairs (i < j) worth measuring: every pair in a small family; else near neighbours plus the Euclidean MST.

    The Euclidean MST keeps the candidate graph connected; near neighbours
    give the spectral distance room to pick a different tree.
    """
    if len(members) <= neighbours + 1:
        return {(a, b) for i, a in enumerate(members) for b in members[i + 1:]}
    sub = euclidean[np.ix_(members, members)]
    pairs = set()
    order = np.argsort(np.where(np.eye(len(members), dtype=bool), np.inf, sub), axis=1)[:, :neighbours]
    for i, row in enumerate(order):
        for j in row:
            a, b = members[i], members[int(j)]
            pairs.add((min(a, b), max(a, b)))
    graph = nx.Graph()
    graph.add_weighted_edges_from((members[i], members[j], sub[i, j])
                                  for i in range(len(members)) for j in range(i + 1, len(members)))
    pairs.update((min(a, b), max(a, b)) for a, b in nx.minimum_spanning_edges(graph, data=False))
    return pairs


def fill_update_distances(out: np.ndarray, states: list[StateDict], keys: list[str], euclidean: np.ndarray,
                          members: list[int]) -> None:
    """Write the update distances among ``members`` (indices into ``states``) into ``out``.

    ``out`` starts as inf (not measured) and keeps inf for pairs not worth measuring.
    """
    out[members, members] = 0.0
    for a, b in candidate_pairs(euclidean, members):
        out[a, b] = out[b, a] = update_distance(states[a], states[b], keys)
