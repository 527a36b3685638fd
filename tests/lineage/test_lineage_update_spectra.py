"""The update-spectrum distance and the tree centrality on constructions whose answer is known."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from analysis.lineage.recovery_tree import tree_path_totals
from analysis.lineage.recovery import recover_lineage, score_recovery
from analysis.lineage.update_spectra import (
    candidate_pairs,
    holds_low_rank,
    schatten_size,
    schatten_sizes,
    tree_fit,
    update_distance,
)


def _rank_one_pieces(n: int = 32, k: int = 4, seed: int = 0) -> list[torch.Tensor]:
    """k rank-one matrices of spectral norm 1 with mutually orthogonal row and column spaces."""
    g = torch.Generator().manual_seed(seed)
    left, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    return [torch.outer(left[:, i], right[:, i]) for i in range(k)]


def test_schatten_half_size_of_known_spectra():
    p = _rank_one_pieces()
    assert schatten_size(3.0 * p[0]) == pytest.approx(3.0)
    # Orthogonal pieces: singular values 4 and 1 -> (2 + 1)^2 = 9 (Frobenius would say sqrt(17)).
    assert schatten_size(4.0 * p[0] + p[1]) == pytest.approx(9.0)
    assert schatten_size(torch.tensor([3.0, 4.0])) == pytest.approx(5.0)  # a vector: its Euclidean norm
    state = {"w": torch.zeros(32, 32, dtype=torch.float64), "b": torch.zeros(32, dtype=torch.float64)}
    moved = {"w": p[0] + p[1], "b": state["b"]}
    assert update_distance(state, moved, ["w", "b"]) == pytest.approx(4.0)


def test_update_distance_finds_the_tree_the_euclidean_distance_gets_wrong():
    """root -> child (small update) -> grandchild; a sibling of the child whose update partly follows the grandchild's.

    Updates: child 0.3 e0, grandchild + e1, sibling 0.6 e1 + e2 (e_i orthogonal rank-one pieces).
    Euclidean: |sibling - grandchild|^2 = 0.16 + 0.09 + 1 = 1.25 < |sibling - root|^2 = 1.36, so the
    sibling hangs off its cousin.  Schatten-1/2: (sqrt 0.6 + 1)^2 = 3.15 from the root against
    (sqrt 0.4 + sqrt 0.3 + 1)^2 = 4.75 from the grandchild: the true tree.
    """
    e = _rank_one_pieces()
    root = torch.randn(32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    states = [{"w": root}, {"w": root + 0.3 * e[0]}, {"w": root + 0.3 * e[0] + e[1]}, {"w": root + 0.6 * e[1] + e[2]}]
    truth = {frozenset(p) for p in [(0, 1), (1, 2), (0, 3)]}

    def tree_edges(dist) -> set[frozenset]:
        graph = nx.Graph()
        graph.add_weighted_edges_from((a, b, dist(states[a], states[b])) for a in range(4) for b in range(a + 1, 4))
        return {frozenset(e) for e in nx.minimum_spanning_tree(graph).edges}

    euclidean = tree_edges(lambda a, b: float((a["w"] - b["w"]).norm()))
    assert frozenset((2, 3)) in euclidean and euclidean != truth
    assert tree_edges(lambda a, b: update_distance(a, b, ["w"])) == truth


def test_candidate_pairs_are_all_pairs_when_few_and_connected_when_many():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((40, 3))
    euclidean = np.linalg.norm(points[:, None] - points[None], axis=-1)
    assert candidate_pairs(euclidean, [0, 1, 2, 3], neighbours=12) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    members = list(range(40))
    pairs = candidate_pairs(euclidean, members, neighbours=3)
    assert len(pairs) < 40 * 39 / 2 and nx.is_connected(nx.Graph(list(pairs)))
    nearest = int(np.argsort(euclidean[5])[1])
    assert (min(5, nearest), max(5, nearest)) in pairs


def test_tree_path_totals_by_hand():
    path = nx.Graph([(0, 1), (1, 2)])
    d = np.array([[0, 1, 0], [1, 0, 2], [0, 2, 0]], dtype=float)
    assert tree_path_totals(path, d) == {0: 4.0, 1: 3.0, 2: 5.0}  # 1 + 3, 1 + 2, 2 + 3
    star = nx.Graph([(3, 0), (3, 1), (3, 2)])
    d = np.ones((4, 4))
    assert tree_path_totals(star, d) == {3: 3.0, 0: 5.0, 1: 5.0, 2: 5.0}


def test_rounding_noise_of_half_precision_weights_is_not_counted_as_update():
    """A rank-one update of size 1 between two float16 checkpoints: about 1, not the sum over 64 noise values."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(64, 64, generator=g)
    child = base + _rank_one_pieces(64, 1, seed=4)[0].float()
    a, b = {"w": base.half()}, {"w": child.half()}
    assert update_distance(a, b, ["w"]) == pytest.approx(1.0, rel=0.05)
    delta = (b["w"].double() - a["w"].double()).unsqueeze(0)
    assert schatten_sizes(delta)[0] > 3.0  # without the noise floor every rounding singular value counts


def test_tree_fit_is_one_for_an_additive_tree_metric_and_less_for_an_equilateral_triangle():
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert tree_fit(pairs, np.array([1.0, 3.0, 2.0])) == pytest.approx(1.0)  # the path 0 - 1 - 2
    # Three equidistant points: the MST's path 0 - 2 is 2 long, so 3 of the 4 units of path are explained.
    assert tree_fit(pairs, np.array([1.0, 1.0, 1.0])) == pytest.approx(0.75)
    assert tree_fit(pairs, np.zeros(3)) == 0.0  # a tensor nobody changed carries no weight


def _tiny_mlp(seed: int) -> dict[str, torch.Tensor]:
    from analysis import zoo

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = zoo.build({"kind": "mlp", "in": 4, "hidden": [3], "out": 2})
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_tiny_layers_fall_back_to_the_euclidean_distance():
    """A 4-3-2 MLP: two roots, each with three isotropic random fine-tunes (full rank, 2% of the init scale).

    3x4 and 2x3 matrices cannot hold low-rank updates apart, and the Schatten size of a full-rank random
    update scatters more than its Euclidean norm: with it the star came out right in 4 of these 10 seeds;
    with the Euclidean distance for small tensors in 8 (one root per zoo: 10 of 10 against 7).
    """
    assert not holds_low_rank((3, 4)) and not holds_low_rank((3,)) and holds_low_rank((6, 1, 3, 3))
    right = {1: 0, 2: 0}
    for seed in range(10):
        for n_roots in (1, 2):
            states, parents, families = {}, {}, {}
            for f in range(n_roots):
                base = _tiny_mlp(10 * seed + f)
                states[f"r{f}"], parents[f"r{f}"], families[f"r{f}"] = base, (), f
                for k in range(3):
                    noise = _tiny_mlp(100 + 10 * (10 * seed + f) + k)
                    states[f"r{f}c{k}"] = {key: value + 0.02 * noise[key] for key, value in base.items()}
                    parents[f"r{f}c{k}"], families[f"r{f}c{k}"] = (f"r{f}",), f
            score = score_recovery(recover_lineage(states), parents, families)
            right[n_roots] += score.undirected_edge_accuracy == 1.0
    assert right[1] >= 9 and right[2] >= 8, right
