"""The tree's shape where update distances cannot decide it, from the geometry of the updates.

A minimum spanning tree of update distances hangs each model off its
nearest relative.  Two situations in small networks defeat that rule, and
each is corrected here by a separate cue:

1. A chain that folds back.  Two fine-tunes on similar data (noisy inputs
   from a root, and noisy inputs from that root's near-copy child) move
   alike, so the first reads as the second's child.  In a real chain
   ``p -> u -> v``, v's update does not retrace u's: seen from u, the
   directions to p and to v are at least at a right angle (on the ten zoo
   recipes the cosine at the middle model is at most 0.1 for 90% of true
   chains, median -0.15), while two children of one parent may point
   alike (cosine up to 0.7).  ``fold_penalties`` charges hanging v below
   u by how far that cosine exceeds ``FOLD_COSINE``, times the length of
   u's own update (a tiny parent edge has a noisy direction and is
   charged little); the tree is rebuilt with those charges against the
   orientation found so far, a few rounds.
2. A far model and a tight cluster.  When a model's update is large
   (hundreds of times a cluster's spread, as for a fine-tune that diverged
   and its two barely moving children), its distances to the cluster's
   members differ by noise, not by the additive step the tree needs: it
   would hang off whichever member its update happened to lean towards.
   ``hub_of_tight_clusters`` hangs it off the cluster's centre (smallest
   summed distance to the other members) instead, the member that can
   be the parent of the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from .weight_cues import delta_cosine

FOLD_COSINE = 0.2  # cosine at the middle model above which a chain counts as folding back
FOLD_ROUNDS = 4  # rebuild-and-reorient rounds (they stop early once the tree is unchanged)
TIGHT_CLUSTER = 0.1  # a cluster is tight when its members are this share of the far edge apart, or closer
TIE_SHARE = 0.5  # a far model cannot tell u from v when their distances to it differ by less than this share of d(u, v)


def fold_penalties(nodes: list[int], distances: np.ndarray, gram: np.ndarray, parent: Mapping[int, int],
                   fold_cosine: float = FOLD_COSINE) -> np.ndarray:
    """``penalty[u, v]`` (in units of ``distances``) for hanging v below u, given u's ``parent`` so far.

    ``(cos - fold_cosine) * distances[parent[u], u]`` when the cosine at u
    between the directions to its parent and to v exceeds ``fold_cosine``;
    0 otherwise, and for a root.
    """
    penalty = np.zeros_like(distances, dtype=float)
    for u in nodes:
        p = parent.get(u)
        if p is None:
            continue
        for v in nodes:
            if v in (u, p) or not np.isfinite(distances[u, v]):
                continue
            excess = delta_cosine(gram, u, p, v) - fold_cosine
            if excess > 0:
                penalty[u, v] = excess * distances[p, u]
    return penalty


def hub_of_tight_clusters(tree: nx.Graph, distances: np.ndarray, tight: float = TIGHT_CLUSTER,
                          tie_share: float = TIE_SHARE) -> nx.Graph:
    """A copy of ``tree`` in which each long edge into a tight cluster ends at the cluster's centre.

    For an edge (u, v), longest first: the members z of v's side that lie
    within ``tight`` times the edge's length of v and whose distance to u
    differs from d(u, v) by less than ``tie_share * d(v, z)`` are tied with
    v; if there are at least three and they are all that close to each
    other, u hangs off the one with the smallest summed distance to the
    others (v keeps the edge on a tie).
    """
    tree = tree.copy()
    for a, b in sorted(tree.edges, key=lambda e: -distances[e[0], e[1]]):
        for u, v in ((a, b), (b, a)):
            if not tree.has_edge(u, v):
                continue
            length = distances[u, v]
            tree.remove_edge(u, v)
            tied = [z for z in nx.node_connected_component(tree, v)
                    if z == v or (distances[v, z] < tight * length and np.isfinite(distances[u, z])
                                  and abs(distances[u, z] - length) < tie_share * distances[v, z])]
            spread = distances[np.ix_(tied, tied)]
            if len(tied) >= 3 and np.isfinite(spread).all() and spread.max() < tight * length:
                totals = spread.sum(axis=1)
                if totals.min() < totals[tied.index(v)] - 1e-12 * length:
                    v = tied[int(np.argmin(totals))]
            tree.add_edge(u, v)
    return tree
