"""The tree of one family: structure from distances, direction from combined cues.

1. Quantised models (``ModelStats.quantized``) are leaves: each hangs off
   its nearest unquantised relative.  They stay out of the steps below, so
   quantisation noise never bends the tree.
2. Merges: a model that is (nearly) a convex combination of two others
   gets both as parents; it too stays out of the tree it was made from.
3. The rest: a minimum spanning tree of the update distances
   (``update_spectra``: a Schatten-1/2 size of the weight difference,
   nearly additive along a chain, so a fine-tune sits nearer its parent
   than its grandparent or cousins even when updates share a drift),
   refined where the distances cannot decide (``tree_refinement``: chains
   that fold back are charged, far models hang off a tight cluster's
   centre; ``near_copies``: the neighbours of a barely moved child and its
   parent hang where their per-matrix updates point).
4. Direction: each tree edge gets a score in both directions, summed from
   independent cues (sibling geometry, a small weight-statistics term,
   metadata when present); the best rooting is the maximum spanning
   arborescence of the tree's edges in both directions (networkx's
   Edmonds), and each edge's direction confidence is how much worse the
   best rooting that flips it scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from .recovery_metadata import ModelMetadata, direction_prior
from .near_copies import settle_near_copies
from .tree_refinement import FOLD_ROUNDS, fold_penalties, hub_of_tight_clusters
from .weight_cues import AdapterEvidence, ModelStats, merge_fits, parent_preference

MAX_EDMONDS_NODES = 40  # above this, networkx Edmonds costs seconds per family; the plain MST lost 1 edge in 196 (50-model families)
TIE_BREAK = 0.1  # weight of the statistics cues in the structure step, in nearest-neighbour distances
MERGE_RESIDUAL = 0.1  # relative residual below which a model is read as a merge (exact merges: ~1e-7)


@dataclass
class FamilyEdge:
    parent: int
    child: int
    relation: str
    confidence: float
    evidence: dict = field(default_factory=dict)


@dataclass
class FamilyTree:
    root: int
    edges: list[FamilyEdge]


def _rising(values: list[float], pairs: list[tuple[int, int]]) -> Callable[[int, int], float]:
    """+1 .. -1 as a statistic rises or falls from a to b, in units of its median change over ``pairs``."""
    diffs = [abs(values[v] - values[u]) for u, v in pairs]
    scale = float(np.median(diffs)) if diffs and np.median(diffs) > 0 else 1.0
    return lambda a, b: float(np.tanh((values[b] - values[a]) / scale))


def _tree_direction_scores(tree: nx.Graph, distances: np.ndarray, gram: np.ndarray, stats: list[ModelStats], names: list[str],
                           kurtosis_weight: float, metadata: Mapping[str, ModelMetadata],
                           entropy_weight: float, centrality_weight: float) -> dict[tuple[int, int], float]:
    pref = parent_preference(gram, {v: list(tree.neighbors(v)) for v in tree.nodes})
    kurt = _rising([s.kurtosis for s in stats], list(tree.edges))
    entropy = _rising([s.spectral_entropy for s in stats], list(tree.edges))
    # The parent sits at the centre of its children: the further a model is from its relatives
    # (summed update distance along the tree), the later it tends to come.
    spread = np.zeros(len(stats))
    for v, total in tree_path_totals(tree, distances).items():
        spread[v] = total
    outward = _rising(spread.tolist(), list(tree.edges))
    scores = {}
    for u, v in tree.edges:
        for a, b in ((u, v), (v, u)):
            # Training drives weights away from their initialisation towards heavier tails (MoTHer);
            # a short fine-tune flattens the singular-value spectrum its parent built up.
            scores[(a, b)] = (pref[(a, b)] + kurtosis_weight * kurt(a, b) + entropy_weight * entropy(a, b)
                              + centrality_weight * outward(a, b)
                              + direction_prior(names[a], names[b], metadata))
    return scores


def tree_path_totals(tree: nx.Graph, distances: np.ndarray) -> dict[int, float]:
    """Per node, the summed length (``distances`` of its edges) of the tree paths to every other node.

    Rerooting in O(n): moving from a parent to a child brings the child's
    subtree one edge nearer and the rest one edge further.
    """
    nodes = list(tree.nodes)
    if len(nodes) < 2:
        return {v: 0.0 for v in nodes}
    root = nodes[0]
    order = list(nx.dfs_preorder_nodes(tree, root))
    parent = dict(nx.dfs_predecessors(tree, root))
    size = {v: 1 for v in nodes}
    depth_sum = {v: 0.0 for v in nodes}  # summed distance from v down to its subtree
    for v in reversed(order[1:]):
        p = parent[v]
        size[p] += size[v]
        depth_sum[p] += depth_sum[v] + size[v] * distances[p, v]
    total = {root: depth_sum[root]}
    for v in order[1:]:
        p = parent[v]
        total[v] = total[p] + distances[p, v] * (len(nodes) - 2 * size[v])
    return total


def _structure(nodes: list[int], distances: np.ndarray, stats: list[ModelStats], kurtosis_weight: float,
               entropy_weight: float, penalty: np.ndarray | None = None) -> nx.Graph:
    """Undirected tree: Edmonds on update distances with a small statistics term, or the MST for large families.

    ``distances`` may be inf for pairs not measured (never an edge).
    ``penalty[a, b]`` (same units) is added to hanging b below a
    (``tree_refinement.fold_penalties``; Edmonds only).

    The statistics term (in units of the median nearest-neighbour distance)
    only breaks near-ties: when two siblings fine-tuned on similar data sit
    as close to each other as to their parent, the parent is the one their
    weight statistics say came first.
    """
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    if len(nodes) < 2:
        return graph
    sub = distances[np.ix_(nodes, nodes)]
    nn = np.where(np.eye(len(nodes), dtype=bool), np.inf, sub).min(axis=1)
    unit = float(np.median(nn)) or 1.0
    if len(nodes) > MAX_EDMONDS_NODES:
        graph.add_weighted_edges_from((a, b, distances[a, b]) for i, a in enumerate(nodes) for b in nodes[i + 1:]
                                      if np.isfinite(distances[a, b]))
        return nx.minimum_spanning_tree(graph)
    kurt = _rising([s.kurtosis for s in stats], [(a, b) for a in nodes for b in nodes if a < b])
    entropy = _rising([s.spectral_entropy for s in stats], [(a, b) for a in nodes for b in nodes if a < b])
    directed = nx.DiGraph()
    directed.add_weighted_edges_from(
        (a, b, (distances[a, b] + (0.0 if penalty is None else penalty[a, b])) / unit
         - TIE_BREAK * (kurtosis_weight * kurt(a, b) + entropy_weight * entropy(a, b)))
        for a in nodes for b in nodes if a != b and np.isfinite(distances[a, b]))
    arb = nx.minimum_spanning_arborescence(directed, attr="weight")
    graph.add_edges_from(arb.edges)
    return graph


def orient_tree(tree: nx.Graph, scores: Mapping[tuple[int, int], float]) -> tuple[int, dict[int, float], nx.DiGraph]:
    """Root, per-child direction margin, and the oriented tree maximising the summed edge scores."""
    nodes = list(tree.nodes)
    if len(nodes) == 1:
        single = nx.DiGraph()
        single.add_node(nodes[0])
        return nodes[0], {}, single
    both = nx.DiGraph()
    both.add_nodes_from(nodes)
    both.add_weighted_edges_from((a, b, w) for (a, b), w in scores.items())
    arb = nx.maximum_spanning_arborescence(both, attr="weight", preserve_attrs=True)
    root = next(n for n in arb.nodes if arb.in_degree(n) == 0)
    # Totals of every rooting by moving the root one edge at a time.
    total = {root: sum(scores[e] for e in arb.edges)}
    for parent, child in nx.bfs_edges(arb, root):
        total[child] = total[parent] - scores[(parent, child)] + scores[(child, parent)]
    best = total[root]
    margin = {}
    for parent, child in arb.edges:
        flipped = max(total[n] for n in nx.descendants(arb, child) | {child})
        margin[child] = best - flipped
    return root, margin, arb


def family_tree(members: list[int], distances: np.ndarray, update_distances: np.ndarray, gram: np.ndarray, stats: list[ModelStats],
                names: list[str], *, kurtosis_weight: float, entropy_weight: float, centrality_weight: float, metadata: Mapping[str, ModelMetadata],
                adapter_check: Callable[[int, int], AdapterEvidence],
                matrix_sizes: Callable[[list[tuple[int, int]]], np.ndarray] | None = None) -> tuple[FamilyTree, FamilyTree | None]:
    """The family's tree, and (when metadata was used) the weights-only tree for comparison.

    ``matrix_sizes(pairs)``: per matrix, the Schatten size of each pair's
    update (``update_spectra.matrix_distances``), for ``near_copies``;
    without it near-copy pairs are left to the distances.
    """
    members = list(members)
    quantized = [v for v in members if stats[v].quantized]
    if len(quantized) == len(members):
        quantized = []
    core = np.array([v for v in members if v not in quantized])
    merges = {}
    if len(core) >= 3:
        used: set[int] = set()
        for fit in sorted(merge_fits(gram, core, distances), key=lambda f: f.relative_residual):
            if fit.relative_residual >= MERGE_RESIDUAL or len(core) - len(merges) < 3:
                break
            if fit.child in used or set(fit.parents) & set(merges):
                continue
            merges[fit.child] = fit
            used.update(fit.parents)
    tree_nodes = [int(v) for v in core if v not in merges]
    tree = _structure(tree_nodes, update_distances, stats, kurtosis_weight, entropy_weight)
    for _ in range(FOLD_ROUNDS if 3 <= len(tree_nodes) <= MAX_EDMONDS_NODES else 0):
        scores = _tree_direction_scores(tree, update_distances, gram, stats, names, kurtosis_weight, {},
                                        entropy_weight, centrality_weight)
        parent = {c: p for p, c in orient_tree(tree, scores)[2].edges}
        penalty = fold_penalties(tree_nodes, update_distances, gram, parent)
        rebuilt = _structure(tree_nodes, update_distances, stats, kurtosis_weight, entropy_weight, penalty)
        if {frozenset(e) for e in rebuilt.edges} == {frozenset(e) for e in tree.edges}:
            break
        tree = rebuilt
    tree = hub_of_tight_clusters(tree, update_distances)

    if matrix_sizes is not None:
        tree = settle_near_copies(tree, update_distances, matrix_sizes)

    def build(meta: Mapping[str, ModelMetadata]) -> FamilyTree:
        scores = _tree_direction_scores(tree, update_distances, gram, stats, names, kurtosis_weight, meta, entropy_weight,
                                        centrality_weight)
        root, margin, arb = orient_tree(tree, scores)
        edges = []
        for p, c in arb.edges:
            others = [distances[c, x] for x in tree_nodes if x not in (p, c)]
            nearest_other = min(others) if others else distances[p, c] * 2
            structure = nearest_other / (nearest_other + distances[p, c])
            direction = 1.0 / (1.0 + np.exp(-4.0 * margin[c]))
            evidence = adapter_check(p, c)
            edges.append(FamilyEdge(p, c, "adapter" if evidence.is_adapter else "finetune",
                                    float(structure * direction),
                                    {"structure": round(float(structure), 4), "direction": round(float(direction), 4),
                                     "direction_margin": round(float(margin[c]), 4),
                                     "low_rank_share": round(evidence.low_rank_share, 4),
                                     "max_rank": evidence.max_rank}))
        for child, fit in merges.items():
            for parent, weight in zip(fit.parents, (fit.alpha, 1 - fit.alpha)):
                edges.append(FamilyEdge(parent, child, "merge", float(max(0.0, 1 - fit.relative_residual / MERGE_RESIDUAL)),
                                        {"weight": round(weight, 4), "relative_residual": fit.relative_residual}))
        hosts = tree_nodes + list(merges)
        for q in quantized:
            parent = min(hosts, key=lambda x: distances[q, x])
            others = sorted(distances[q, x] for x in hosts if x != parent)
            structure = others[0] / (others[0] + distances[q, parent]) if others else 1.0
            edges.append(FamilyEdge(parent, q, "quantized", float(structure * stats[q].grid_fraction),
                                    {"bits": stats[q].bits, "grid_fraction": round(stats[q].grid_fraction, 4)}))
        return FamilyTree(root, edges)

    with_meta = build(metadata)
    weights_only = build({}) if metadata else None
    return with_meta, weights_only
