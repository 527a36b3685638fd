"""Recovering model trees from weights alone (metadata optional).

MoTHer (Horwitz et al. 2024, "On the Origin of Llamas") recovers a tree from
distances plus one direction statistic, weight kurtosis rising from parent
to child.  That statistic holds only while a root is still drifting away
from its initialisation: on zoos with roots trained to convergence it
pointed the wrong way on up to half of the edges.  Here several independent
cues are measured on their own (``weight_cues``) and combined
(``recovery_tree``):

1. Architectures: models whose tensor names and shapes differ are never
   relatives; each architecture is recovered on its own.
2. Families: two models are relatives when their (per-tensor centred)
   weights are correlated.  Independent random initialisations give a
   cosine near 0 (about 1/sqrt(parameters)); a fine-tune keeps most of its
   parent's weights, so relatives sit far above.  Families are the
   connected components of "cosine above ``family_similarity``" (single
   linkage: chains of fine-tunes stay together).  With ``threshold`` or
   ``n_families`` the older distance-gap clustering is used instead.
3. Per family: quantised leaves (values on a coarse grid), merges (convex
   combinations of two relatives), a minimum spanning tree of update
   distances (``update_spectra``) for the rest, oriented by sibling
   geometry, centrality along the tree, spectral entropy, a small kurtosis
   term and metadata (upload order, declared parents), with networkx's
   Edmonds.
4. Relations: quantized / merge from their detectors, adapter when the
   update is low rank in every matrix it touches, finetune otherwise.

Distances and cosines come from one streamed Gram matrix, count-sketched
for large models (``weight_sketch``), so 1,000 models fit in memory.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from .graph import LineageGraph
from .recovery_metadata import Disagreement, ModelMetadata, disagreements
from .recovery_scoring import (  # noqa: F401  (re-exported: the public scoring API lives here too)
    RecoveryScore,
    adjusted_rand_index,
    pairwise_clustering_accuracy,
    score_recovery,
)
from .recovery_tree import family_tree
from .update_spectra import fill_update_distances, matrix_distances
from .weight_cues import ModelStats, adapter_evidence
from .weight_sketch import architecture_signature, weight_gram
from .zoo_models import single_thread

StateDict = Mapping[str, torch.Tensor]

FAMILY_SIMILARITY = 0.3


# ---------------------------------------------------------------------------
# Weight statistics and the older distance-gap clustering
# ---------------------------------------------------------------------------



def flatten_checkpoints(checkpoints: Mapping[str, StateDict]) -> tuple[list[str], np.ndarray, list[str]]:
    """(names, matrix of flattened float tensors in float64, tensor keys used).

    All checkpoints must have the same floating-point tensors and shapes.
    """
    names = list(checkpoints)
    if len(names) < 2:
        raise ValueError("need at least two checkpoints")
    first = checkpoints[names[0]]
    keys = [k for k, v in first.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    if not keys:
        raise ValueError(f"{names[0]!r} has no floating-point tensors")
    shapes = {k: tuple(first[k].shape) for k in keys}
    rows = []
    for name in names:
        state = checkpoints[name]
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"{name!r} lacks tensor {missing[0]!r}: checkpoints must share one architecture")
        parts = []
        for k in keys:
            t = state[k]
            if tuple(t.shape) != shapes[k]:
                raise ValueError(f"{name!r}[{k!r}] has shape {tuple(t.shape)}, expected {shapes[k]}")
            parts.append(t.detach().to("cpu", torch.float64).reshape(-1))
        row = torch.cat(parts).numpy()
        if not np.isfinite(row).all():
            raise ValueError(f"{name!r} has non-finite weights")
        rows.append(row)
    return names, np.stack(rows), keys


# ---------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------


def cluster_families(
    D: np.ndarray, *, threshold: float | None = None, n_families: int | None = None, min_gap_ratio: float = 2.0
) -> tuple[np.ndarray, float]:
    """Single-linkage clusters; returns (labels 0..k-1, distance threshold used).

    Without ``threshold`` or ``n_families``: cut in the largest ratio between
    consecutive merge heights, if that ratio is at least ``min_gap_ratio``;
    otherwise everything is one family (no clear separation to trust).
    """
    n = D.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int), 0.0
    Z = linkage(squareform(D, checks=False), method="single")
    heights = Z[:, 2]
    if n_families is not None:
        labels = fcluster(Z, t=n_families, criterion="maxclust")
        cut = float(heights[n - 1 - n_families]) if 0 < n_families < n else 0.0
    else:
        if threshold is None:
            threshold = _largest_gap_threshold(heights, min_gap_ratio)
        labels = fcluster(Z, t=threshold, criterion="distance")
        cut = threshold
    # Renumber by first appearance so labels are stable and start at 0.
    order: dict[int, int] = {}
    out = np.array([order.setdefault(int(l), len(order)) for l in labels], dtype=int)
    return out, float(cut)


def _largest_gap_threshold(heights: np.ndarray, min_gap_ratio: float) -> float:
    h = np.sort(heights)
    top = float(h[-1])
    if top <= 0:
        return 0.0
    positive = h[h > 1e-9 * top]  # identical copies (distance 0) carry no gap information
    if len(positive) < 2:
        return top * (1 + 1e-9) if len(positive) == 0 else float(positive[0]) * 0.5
    ratios = positive[1:] / positive[:-1]
    i = int(np.argmax(ratios))
    if ratios[i] < min_gap_ratio:
        return top * 2.0  # one family
    return float(math.sqrt(positive[i] * positive[i + 1]))



def families_by_shared_init(cosines: np.ndarray, similarity: float = FAMILY_SIMILARITY) -> np.ndarray:
    """Connected components of "weight cosine above ``similarity``"; labels in order of first member."""
    n = cosines.shape[0]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    i, j = np.nonzero(np.triu(cosines > similarity, k=1))
    graph.add_edges_from(zip(i.tolist(), j.tolist()))
    labels = np.empty(n, dtype=int)
    for k, comp in enumerate(sorted(nx.connected_components(graph), key=min)):
        labels[list(comp)] = k
    return labels


# ---------------------------------------------------------------------------
# Spanning arborescences (networkx's Edmonds)
# ---------------------------------------------------------------------------


def _cost_digraph(cost: np.ndarray, skip_into: int | None = None) -> nx.DiGraph:
    n = cost.shape[0]
    if cost.shape != (n, n):
        raise ValueError("cost must be a square matrix")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    for u, v in zip(*np.nonzero(np.isfinite(cost))):
        if u != v and v != skip_into:
            graph.add_edge(int(u), int(v), weight=float(cost[u, v]))
    return graph


def _parents_of(arborescence: nx.DiGraph, n: int) -> np.ndarray:
    parent = np.full(n, -1, dtype=int)
    for u, v in arborescence.edges:
        parent[v] = u
    return parent


def min_spanning_arborescence(cost: np.ndarray, root: int) -> np.ndarray:
    """Parent array of the minimum-cost arborescence rooted at ``root`` (``cost[u, v]``: u -> v, inf = none)."""
    n = cost.shape[0]
    if not 0 <= root < n:
        raise ValueError("root out of range")
    graph = _cost_digraph(np.asarray(cost, dtype=float), skip_into=root)
    if n == 1:
        return np.array([-1])
    try:
        arb = nx.minimum_spanning_arborescence(graph, attr="weight")
    except nx.NetworkXException as exc:
        raise ValueError("some nodes cannot be reached from the root") from exc
    return _parents_of(arb, n)


def min_spanning_arborescence_any_root(cost: np.ndarray) -> np.ndarray:
    """Like ``min_spanning_arborescence`` but Edmonds picks the root too."""
    n = cost.shape[0]
    try:
        arb = nx.minimum_spanning_arborescence(_cost_digraph(np.asarray(cost, dtype=float)), attr="weight")
    except nx.NetworkXException as exc:
        raise ValueError("no spanning arborescence exists") from exc
    return _parents_of(arb, n)


# ---------------------------------------------------------------------------
# The whole recovery
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveredEdge:
    parent: str
    child: str
    distance: float
    relation: str = "finetune"
    confidence: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class RecoveryResult:
    names: list[str]
    distances: np.ndarray  # NaN between models of different architectures
    kurtosis: np.ndarray
    labels: np.ndarray  # family label per model
    threshold: float  # the family cut: cosine similarity, or the distance of the gap clustering
    edges: list[RecoveredEdge]
    roots: list[str]
    direction_weight: float  # weight of the kurtosis cue beside sibling geometry
    stats: dict[str, ModelStats] = field(default_factory=dict)
    architecture: list[int] = field(default_factory=list)  # architecture group per model
    disagreements: list[Disagreement] = field(default_factory=list)
    sketched: bool = False

    @property
    def families(self) -> list[list[str]]:
        groups: dict[int, list[str]] = {}
        for name, label in zip(self.names, self.labels):
            groups.setdefault(int(label), []).append(name)
        return [groups[k] for k in sorted(groups)]

    def parents_of(self) -> dict[str, tuple[str, ...]]:
        parents: dict[str, tuple[str, ...]] = {n: () for n in self.names}
        for e in self.edges:
            parents[e.child] = parents[e.child] + (e.parent,)
        return parents

    def parent_of(self) -> dict[str, str | None]:
        """One parent per model (a merge's heavier parent first)."""
        return {n: (ps[0] if ps else None) for n, ps in self.parents_of().items()}

    def to_graph(self) -> LineageGraph:
        graph = LineageGraph()
        for name, label, k in zip(self.names, self.labels, self.kurtosis):
            attrs = {"recovered_family": int(label), "kurtosis": float(k)}
            if name in self.stats and self.stats[name].bits is not None:
                attrs["quantized_bits"] = self.stats[name].bits
            graph.add_node(name, attrs)
        for e in self.edges:
            graph.add_edge(e.parent, e.child, e.relation, "weights")
        return graph


def _architecture_groups(checkpoints: Mapping[str, StateDict], names: list[str]) -> list[list[str]]:
    groups: dict[tuple, list[str]] = {}
    for name in names:
        signature = architecture_signature(checkpoints[name])
        if not signature:
            raise ValueError(f"{name!r} has no floating-point tensors")
        groups.setdefault(signature, []).append(name)
    return list(groups.values())


def recover_lineage(
    checkpoints: Mapping[str, StateDict],
    *,
    threshold: float | None = None,
    n_families: int | None = None,
    direction_weight: float = 0.25,
    entropy_weight: float = 0.5,
    centrality_weight: float = 1.5,
    min_gap_ratio: float = 2.0,
    family_similarity: float = FAMILY_SIMILARITY,
    metadata: Mapping[str, ModelMetadata | Mapping[str, Any]] | None = None,
    sketch_dim: int | None = 1 << 14,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> RecoveryResult:
    """Families and parent -> child edges (with relation and confidence) from checkpoints.

    ``direction_weight`` weighs the kurtosis cue against sibling geometry
    (one pair of siblings with orthogonal deltas counts 1); 0 turns it off.
    ``metadata`` (name -> ``ModelMetadata`` or a dict with
    ``declared_parents`` / ``uploaded_at``) adds direction evidence, and the
    result lists where the weights-only tree disagrees with it.
    """
    if direction_weight < 0:
        raise ValueError("direction_weight must be >= 0")
    # Small SVDs and matmuls: one thread is fastest, and on a busy machine two threads were 15x slower.
    with single_thread():
        return _recover(checkpoints, threshold, n_families, direction_weight, entropy_weight, centrality_weight,
                        min_gap_ratio, family_similarity, metadata, sketch_dim, on_progress)


def _recover(checkpoints, threshold, n_families, direction_weight, entropy_weight, centrality_weight, min_gap_ratio,
             family_similarity, metadata, sketch_dim, on_progress) -> RecoveryResult:
    names = list(checkpoints)
    if len(names) < 2:
        raise ValueError("need at least two checkpoints")
    if (threshold is not None or n_families is not None) and len(_architecture_groups(checkpoints, names)) > 1:
        raise ValueError("a distance threshold or family count needs checkpoints of one tensor shape")
    meta = {k: ModelMetadata.coerce(v) for k, v in (metadata or {}).items()}
    index = {n: i for i, n in enumerate(names)}
    n = len(names)
    D = np.full((n, n), np.nan)
    kurt = np.zeros(n)
    labels = np.zeros(n, dtype=int)
    arch = np.zeros(n, dtype=int)
    stats: dict[str, ModelStats] = {}
    edges: list[RecoveredEdge] = []
    roots: list[str] = []
    weights_parents: dict[str, tuple[str, ...]] = {}
    sketched = False
    cut = family_similarity
    next_label = 0
    groups = _architecture_groups(checkpoints, names)
    read = 0

    def progress(event: dict[str, Any]) -> None:
        if on_progress is not None:
            on_progress(event)

    for g, group in enumerate(groups):
        def read_progress(done: int, total: int, _base=read) -> None:
            progress({"stage": "reading", "done": _base + done, "total": n})

        wg = weight_gram(checkpoints, group, sketch_dim=sketch_dim, on_progress=read_progress)
        read += len(group)
        sketched |= wg.sketched
        idx = np.array([index[m] for m in group])
        Dg = wg.distances()
        D[np.ix_(idx, idx)] = Dg
        arch[idx] = g
        for m, s in zip(group, wg.stats):
            stats[m] = s
            kurt[index[m]] = s.kurtosis
        if len(group) == 1:
            local = np.zeros(1, dtype=int)
        elif threshold is not None or n_families is not None:
            local, cut = cluster_families(Dg, threshold=threshold, n_families=n_families, min_gap_ratio=min_gap_ratio)
        else:
            local = families_by_shared_init(wg.cosines(), family_similarity)
        labels[idx] = local + next_label
        next_label += int(local.max()) + 1

        @functools.lru_cache(maxsize=None)
        def adapter_check(p: int, c: int, _group=group, _keys=tuple(wg.keys)):
            return adapter_evidence(checkpoints[_group[p]], checkpoints[_group[c]], _keys)

        families = [np.flatnonzero(local == k) for k in range(int(local.max()) + 1)]
        group_states = [checkpoints[m] for m in group]
        Ug = np.full_like(Dg, np.inf)
        for k, members in enumerate(families):
            progress({"stage": "family", "architecture": g, "done": k + 1, "total": len(families),
                      "size": int(len(members))})
            fill_update_distances(Ug, group_states, wg.keys, Dg, [int(v) for v in members if not wg.stats[v].quantized])
            tree, weights_only = family_tree(members.tolist(), Dg, Ug, wg.gram, wg.stats, group,
                                             kurtosis_weight=direction_weight, entropy_weight=entropy_weight,
                                             centrality_weight=centrality_weight,
                                             metadata=meta,
                                             adapter_check=adapter_check,
                                             matrix_sizes=functools.partial(matrix_distances, group_states, wg.keys))
            roots.append(group[tree.root])
            for e in tree.edges:
                edges.append(RecoveredEdge(group[e.parent], group[e.child], float(Dg[e.parent, e.child]),
                                           e.relation, round(e.confidence, 4), e.evidence))
            for e in (weights_only or tree).edges:
                weights_parents[group[e.child]] = weights_parents.get(group[e.child], ()) + (group[e.parent],)
            weights_parents.setdefault(group[(weights_only or tree).root], ())
    found = disagreements(weights_parents, meta) if meta else []
    return RecoveryResult(names, D, kurt, labels, float(cut), edges, roots, direction_weight, stats,
                          arch.tolist(), found, sketched)
