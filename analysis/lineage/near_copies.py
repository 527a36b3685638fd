"""Where a model's neighbours hang when two of the family are near-copies of each other.

A lightly fine-tuned child (a class-subset fine-tune that barely moves)
sits so close to its parent that every other relative is about equally far
from both: their summed update distances differ by less than the pair's
own distance, by noise and by the drift that all fine-tunes of one parent
share.  The spanning tree then hangs a sibling off the copy or off the
parent by that noise, and a sibling on the copy makes the copy central, so
the copy reads as the family's parent.

The sum is dominated by the largest tensors, where a tiny step is lost
beside a large update.  Each tensor on its own still sees it: the update
from a model's true host is one fine-tune, from the other end of the pair
it is that fine-tune plus the pair's step, and the relative change in the
tensor's update size carries the step whatever the tensor's scale.  So a
neighbour tied between the two ends (summed distances closer than
``TIE_SHARE`` of the pair's distance) hangs on the end from which its
per-matrix update sizes are smaller in geometric mean: every matrix votes
with the log-ratio of its two Schatten sizes, whatever its scale.  Vectors
do not vote (a vector's norm adds in quadrature, not along a chain).  On
the ``cnn`` zoos of seeds 0-5 the vote named the true host for 66 of the
69 children of near-copy pairs (each measured against both ends).

Where the pair's step is below ``MIN_STEP`` of the neighbour's own update
(a copy that moved 1/100 as far as its siblings, as in the deep-chain
zoos), it is lost in the spectra's noise and the vote is left out: the
tree keeps what it had.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np

NEAR_COPY = 0.25  # a pair is a near-copy when its distance is at most this share of either end's nearest other
MIN_STEP = 0.02  # below this share of a neighbour's update the pair's step is lost in the spectrum's noise
TIE_SHARE = 0.25  # a neighbour is tied when its distances to the two ends differ by less than this share of theirs


def near_copy_pairs(tree: nx.Graph, distances: np.ndarray, near: float = NEAR_COPY) -> list[tuple[int, int]]:
    """Tree edges (a, b) with d(a, b) <= ``near`` times the distance from a or b to its nearest other node."""
    nodes = list(tree.nodes)
    pairs = []
    for a, b in tree.edges:
        others = [min(distances[a, x], distances[b, x]) for x in nodes if x not in (a, b)]
        if others and distances[a, b] <= near * min(others):
            pairs.append((a, b))
    return pairs


def tensor_vote(sizes_to_a: np.ndarray, sizes_to_b: np.ndarray) -> float:
    """Summed log-ratio ``log(b / a)`` over units both sizes measure: > 0 when the update from a is smaller."""
    both = (sizes_to_a > 0) & (sizes_to_b > 0)
    return float(np.log(sizes_to_b[both] / sizes_to_a[both]).sum())


def settle_near_copies(tree: nx.Graph, distances: np.ndarray,
                       matrix_sizes: Callable[[list[tuple[int, int]]], np.ndarray],
                       near: float = NEAR_COPY, tie_share: float = TIE_SHARE, min_step: float = MIN_STEP) -> nx.Graph:
    """A copy of ``tree`` in which each near-copy pair's tied neighbours hang on the end their matrices vote for.

    ``matrix_sizes(pairs)`` gives, per matrix (rows), the Schatten size of
    each pair's update (columns; ``update_spectra.matrix_distances``).  A
    neighbour is tied when its summed distances to the two ends differ by
    less than ``tie_share`` of the pair's distance; it is left where it is
    when the pair's distance is below ``min_step`` of its own, or when the
    vote is exactly even (no matrix measured).
    """
    tree = tree.copy()
    for a, b in near_copy_pairs(tree, distances, near):
        if not tree.has_edge(a, b):
            continue
        gap = distances[a, b]
        tied = sorted(x for x in (set(tree.neighbors(a)) | set(tree.neighbors(b))) - {a, b}
                      if np.isfinite(distances[x, a]) and np.isfinite(distances[x, b])
                      and abs(distances[x, a] - distances[x, b]) < tie_share * gap
                      and gap >= min_step * min(distances[x, a], distances[x, b]))
        if not tied:
            continue
        sizes = matrix_sizes([(x, end) for x in tied for end in (a, b)])
        for i, x in enumerate(tied):
            vote = tensor_vote(sizes[:, 2 * i], sizes[:, 2 * i + 1])
            if vote == 0.0:
                continue
            tree.remove_edges_from([(x, a), (x, b)])
            tree.add_edge(x, a if vote > 0 else b)
    return tree
