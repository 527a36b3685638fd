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
first-order margin.  p = 1/2 per matrix; a vector (bias, norm gain)
counts by its Euclidean norm (a vector is rank one).  Tensors are summed,
each weighted by how tree-like its own distances are in the family
(``tree_fit``): tensors too small to keep updates apart count less.

The premise needs room: a matrix with a side below ``LOW_RANK_MIN_SIDE``
(a 3x4 layer) cannot hold two updates of rank two in separate subspaces,
and there a full-rank update's singular values scatter more than its
Frobenius norm does (random updates of a 4-3-2 MLP: the tree came out
right in 4 of 10 seeds against 8 with the Euclidean distance).  Such
tensors, and vectors as short, are measured together as one tensor by the
Euclidean distance of their concatenation.

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
LOW_RANK_MIN_SIDE = 5  # smaller matrices (and shorter vectors) are measured by the Euclidean distance
NEIGHBOURS = 12  # Euclidean nearest neighbours whose distance is measured, per model, in large families
BATCH_VALUES = 1 << 22  # update values per batched SVD call (32 MB of float64)


def _evenly(n: int, keep: int) -> torch.Tensor:
    return torch.linspace(0, n - 1, keep).round().long()


def _as_matrices(delta: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``delta`` (a batch along the first axis) as matrices of at most ``MAX_SIDE`` rows and columns, and the scale.

    Keeping a share f of the entries of a low-rank matrix scales its singular values by about sqrt(f).
    """
    m = delta.reshape(delta.shape[0], delta.shape[1], -1)
    scale = 1.0
    rows, cols = m.shape[1:]
    if rows > MAX_SIDE:
        m, scale = m[:, _evenly(rows, MAX_SIDE)], scale * rows / MAX_SIDE
    if cols > MAX_SIDE:
        m, scale = m[:, :, _evenly(cols, MAX_SIDE)], scale * cols / MAX_SIDE
    return m, float(np.sqrt(scale))


def schatten_sizes(deltas: torch.Tensor, p: float = SCHATTEN_P, entry_noise: torch.Tensor | None = None
                   ) -> np.ndarray:
    """``(sum_i s_i^p)^(1/p)`` per item of a batch of updates (first axis), each seen as a matrix (rows = next axis).

    A vector (bias, norm gain) is rank one: its size is its Euclidean norm.
    Singular values at the noise floor are dropped, since p < 1 would count
    every one of them: the SVD's own rounding, and ``entry_noise`` (per item,
    the standard deviation of rounding noise in each entry, from how the
    weights were stored), whose spectrum reaches about
    ``entry_noise * (sqrt(rows) + sqrt(cols))``.
    """
    if deltas.dim() < 3:
        return deltas.double().norm(dim=1).numpy()
    m, scale = _as_matrices(deltas)
    rows, cols = m.shape[1:]
    # float32 is plenty for a ranking of distances and twice as fast as float64.
    s = torch.linalg.svdvals(m.to(torch.float32)).double()
    floor = s[:, :1] * max(rows, cols) * torch.finfo(torch.float32).eps
    if entry_noise is not None:
        floor = torch.maximum(floor, entry_noise.double()[:, None] * (np.sqrt(rows) + np.sqrt(cols)))
    s = torch.where(s > floor, s, torch.zeros_like(s))
    return ((s**p).sum(dim=1) ** (1.0 / p)).numpy() * scale


def schatten_size(delta: torch.Tensor, p: float = SCHATTEN_P) -> float:
    """The size of one update (see ``schatten_sizes``)."""
    return float(schatten_sizes(delta.unsqueeze(0), p)[0])


def holds_low_rank(shape: tuple[int, ...]) -> bool:
    """Whether a tensor of ``shape`` is large enough to be measured on its spectrum (sides >= LOW_RANK_MIN_SIDE)."""
    sides = (shape[0], int(np.prod(shape[1:]))) if len(shape) > 1 else tuple(shape)
    return bool(sides) and min(sides) >= LOW_RANK_MIN_SIDE


def tensor_groups(state: StateDict, keys: Iterable[str]) -> list[tuple[list[str], bool]]:
    """(keys, euclidean) per measured unit: each tensor that ``holds_low_rank`` alone, the small ones together."""
    keys = list(keys)
    small = [k for k in keys if not holds_low_rank(tuple(state[k].shape))]
    return [([k], False) for k in keys if k not in small] + ([(small, True)] if small else [])


def matrix_distances(states: list[StateDict], keys: list[str], pairs: list[tuple[int, int]]) -> np.ndarray:
    """Per matrix that ``holds_low_rank`` (rows), the Schatten size of each pair's update (columns), not summed.

    Vectors are left out: a vector's size is its Euclidean norm, which adds in quadrature, not along a chain.
    """
    first = states[pairs[0][0]]
    matrices = [k for k in keys if first[k].dim() > 1 and holds_low_rank(tuple(first[k].shape))]
    if not matrices:
        return np.zeros((0, len(pairs)))
    return np.stack([update_distances_of_pairs(states, [k], pairs) for k in matrices])


def update_distance(a: StateDict, b: StateDict, keys: Iterable[str]) -> float:
    """Sum over tensors of the Schatten-1/2 size of ``b - a`` (the small tensors: their joint Euclidean norm)."""
    return float(sum(update_distances_of_pairs([a, b], group, [(0, 1)], euclidean=euclidean)[0]
                     for group, euclidean in tensor_groups(a, keys)))


def _rounding_noise(a: torch.Tensor, b: torch.Tensor) -> float:
    """Standard deviation of the rounding noise in ``b - a``: half an ulp, uniform, in each of two stored values."""
    eps = max(torch.finfo(a.dtype).eps, torch.finfo(b.dtype).eps)
    rms = float(a.detach().double().pow(2).mean().sqrt())
    return eps * rms / np.sqrt(6.0)


def update_distances_of_pairs(states: list[StateDict], keys: list[str], pairs: list[tuple[int, int]], *,
                              euclidean: bool = False) -> np.ndarray:
    """Update distances of many pairs, tensor by tensor in batches (one SVD call per batch).

    Summed Schatten sizes over ``keys``; with ``euclidean``, the Euclidean
    norm of the update over all ``keys`` together (no SVD).
    """
    totals = np.zeros(len(pairs))
    if not pairs:
        return totals
    for k in keys:
        numel = states[pairs[0][0]][k].numel()
        step = max(1, BATCH_VALUES // max(numel, 1))
        for start in range(0, len(pairs), step):
            chunk = pairs[start:start + step]
            deltas = torch.stack([states[b][k].detach().to("cpu", torch.float64)
                                  - states[a][k].detach().to("cpu", torch.float64) for a, b in chunk])
            flat = deltas.reshape(len(chunk), -1)
            if euclidean:
                totals[start:start + step] += flat.pow(2).sum(dim=1).numpy()
                continue
            moved = flat.abs().amax(dim=1) > 0  # an unchanged tensor adds nothing (and costs no SVD)
            if moved.any():
                noise = torch.tensor([_rounding_noise(states[a][k], states[b][k]) for a, b in chunk])
                totals[start:start + step][moved.numpy()] += schatten_sizes(deltas[moved], entry_noise=noise[moved])
    return np.sqrt(totals) if euclidean else totals


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


def tree_fit(pairs: list[tuple[int, int]], distances: np.ndarray) -> float:
    """How tree-like one tensor's update distances are: their sum over the sum of path lengths in their MST.

    1 for an additive tree metric (every distance is the path through the
    tree); lower when updates overlap, as in a small matrix (a 6x9 kernel
    cannot hold two independent low-rank updates), where the distances say
    less about who descends from whom.  0 for a tensor no model changed.
    """
    if not pairs or distances.sum() <= 0:
        return 0.0
    graph = nx.Graph()
    graph.add_weighted_edges_from((a, b, d) for (a, b), d in zip(pairs, distances))
    tree = nx.minimum_spanning_tree(graph)
    root = next(iter(tree.nodes))
    depth = nx.single_source_dijkstra_path_length(tree, root)
    lca = dict(nx.tree_all_pairs_lowest_common_ancestor(nx.bfs_tree(tree, root), root, pairs))
    paths = sum(depth[a] + depth[b] - 2 * depth[lca[(a, b)]] for a, b in pairs)
    return float(distances.sum() / paths) if paths > 0 else 0.0


def fill_update_distances(out: np.ndarray, states: list[StateDict], keys: list[str], euclidean: np.ndarray,
                          members: list[int]) -> None:
    """Write the update distances among ``members`` (indices into ``states``) into ``out``.

    ``out`` starts as inf (not measured) and keeps inf for pairs not worth
    measuring.  Each tensor's distances (the small tensors': their joint
    Euclidean distance) count in proportion to how tree-like they are
    (``tree_fit``), measured on this family's own candidate pairs.
    """
    out[members, members] = 0.0
    pairs = sorted(candidate_pairs(euclidean, members))
    total = np.zeros(len(pairs))
    for group, euclidean in tensor_groups(states[members[0]], keys):
        per_tensor = update_distances_of_pairs(states, group, pairs, euclidean=euclidean)
        total += tree_fit(pairs, per_tensor) * per_tensor
    for (a, b), d in zip(pairs, total):
        out[a, b] = out[b, a] = d
