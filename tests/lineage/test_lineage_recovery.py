"""Recovering lineage from weights: Edmonds (networkx) against brute force, clustering
metrics against known values, and the whole pipeline on the synthetic zoo."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform

from analysis.lineage.recovery import (
    adjusted_rand_index,
    cluster_families,
    min_spanning_arborescence,
    min_spanning_arborescence_any_root,
    pairwise_clustering_accuracy,
    recover_lineage,
    score_recovery,
)
from analysis.lineage.synthetic_zoo import build_synthetic_zoo
from analysis.lineage.weight_cues import model_stats


def brute_force_arborescence_cost(cost: np.ndarray, root: int) -> float:
    n = len(cost)
    others = [v for v in range(n) if v != root]
    best = np.inf
    for choice in itertools.product(range(n), repeat=len(others)):
        parent = dict(zip(others, choice))
        if any(p == v or not np.isfinite(cost[p, v]) for v, p in parent.items()):
            continue
        ok = True
        for v in others:
            seen, u = set(), v
            while u != root and ok:
                if u in seen:
                    ok = False
                seen.add(u)
                u = parent[u]
        if ok:
            best = min(best, sum(cost[p, v] for v, p in parent.items()))
    return best


def test_edmonds_matches_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(150):
        n = int(rng.integers(2, 6))
        cost = rng.random((n, n)) * 10
        if trial % 3 == 0:
            cost = np.round(cost)  # ties
        if trial % 4 == 0:
            cost[rng.random((n, n)) < 0.3] = np.inf
        root = int(rng.integers(n))
        expected = brute_force_arborescence_cost(cost, root)
        if not np.isfinite(expected):
            with pytest.raises(ValueError):
                min_spanning_arborescence(cost, root)
            continue
        parent = min_spanning_arborescence(cost, root)
        assert parent[root] == -1
        got = sum(cost[parent[v], v] for v in range(n) if v != root)
        assert got == pytest.approx(expected), trial


def test_edmonds_needs_contraction_on_a_classic_example():
    # Cheapest in-edges b<->c form a cycle; the optimum (cost 10) enters it from r at c,
    # not through a (r->a->b->c costs 12).
    inf = np.inf
    cost = np.array([
        # r    a    b    c
        [inf, 5.0, 9.0, 4.0],   # r ->
        [inf, inf, 6.0, inf],   # a ->
        [inf, 9.0, inf, 1.0],   # b ->
        [inf, 9.0, 1.0, inf],   # c ->
    ])
    assert min_spanning_arborescence(cost, 0).tolist() == [-1, 0, 3, 0]
    free = min_spanning_arborescence_any_root(cost[1:, 1:])
    assert (free == -1).sum() == 1


def test_clustering_metrics_known_values():
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    assert pairwise_clustering_accuracy([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(2 / 6)
    try:
        from sklearn.metrics import adjusted_rand_score
    except ImportError:  # pragma: no cover
        return
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.integers(0, 4, 30), rng.integers(0, 3, 30)
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b))


def test_cluster_families_finds_the_gap_or_declines():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(3, 50)) * 100
    points = np.concatenate([c + rng.normal(size=(5, 50)) for c in centres])
    labels, threshold = cluster_families(squareform(pdist(points)))
    assert adjusted_rand_index(labels, np.repeat([0, 1, 2], 5)) == 1.0 and threshold > 0
    # No clear gap (one Gaussian blob): one family, not an arbitrary split.
    blob = rng.normal(size=(12, 50))
    labels, _ = cluster_families(squareform(pdist(blob)))
    assert len(set(labels.tolist())) == 1
    labels, _ = cluster_families(squareform(pdist(points)), n_families=2)
    assert len(set(labels.tolist())) == 2


def test_weight_kurtosis_of_known_distributions():
    rng = np.random.default_rng(3)
    # Excess kurtosis of all a model's values together, however they are split into tensors.
    for sample, expected in ((rng.normal(size=200_000), 0.0), (rng.uniform(-1, 1, size=200_000), -1.2),
                             (rng.laplace(size=200_000), 3.0)):
        x = torch.from_numpy(sample)
        state = {"a.weight": x[:150_000].reshape(300, 500), "a.bias": x[150_000:]}
        assert model_stats(state, list(state)).kurtosis == pytest.approx(expected, abs=0.1)
    assert model_stats({"w": torch.ones(10, 10)}, ["w"]).kurtosis == 0.0


def test_synthetic_zoo_shape_and_determinism(synthetic_zoo):
    zoo = synthetic_zoo
    assert len(zoo.models) == 39
    assert sorted(set(zoo.true_families().values())) == [0, 1, 2]
    assert sum(1 for m in zoo.models if m.parent is None) == 3
    assert sum(1 for m in zoo.models if m.generation == 2) == 24
    assert all(m.train_accuracy > 0.5 for m in zoo.models if m.generation == 0)
    graph = zoo.lineage_graph()
    assert len(graph.families()) == 3 and {f.size for f in graph.families()} == {13}
    small_a = build_synthetic_zoo(n_families=1, children_per_root=2, grandchildren_per_child=1, root_steps=30,
                                  child_steps=10, grandchild_steps=10, seed=4)
    small_b = build_synthetic_zoo(n_families=1, children_per_root=2, grandchildren_per_child=1, root_steps=30,
                                  child_steps=10, grandchild_steps=10, seed=4)
    for a, b in zip(small_a.models, small_b.models):
        assert a.name == b.name
        assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    # Another seed gives other weights.
    small_c = build_synthetic_zoo(n_families=1, children_per_root=2, grandchildren_per_child=1, root_steps=30,
                                  child_steps=10, grandchild_steps=10, seed=5)
    assert not torch.equal(small_a.models[0].state_dict["0.weight"], small_c.models[0].state_dict["0.weight"])


def test_kurtosis_rises_from_parent_to_child_on_the_zoo(synthetic_zoo):
    """The direction prior used by recovery, checked on the zoo: children are
    more kurtotic than their parents (35 of 36 edges at seed 0)."""
    result = recover_lineage(synthetic_zoo.state_dicts())
    k = dict(zip(result.names, result.kurtosis))
    edges = synthetic_zoo.true_edges()
    rising = sum(k[child] > k[parent] for parent, child in edges)
    assert rising / len(edges) >= 0.9


def test_recovery_on_the_synthetic_zoo(synthetic_zoo):
    result = recover_lineage(synthetic_zoo.state_dicts())
    score = score_recovery(result, synthetic_zoo.true_parents(), synthetic_zoo.true_families())
    print(f"\nrecovery on 3x13 zoo: {score}")
    assert score.true_edges == 36
    assert score.pairwise_clustering_accuracy >= 0.8
    assert score.adjusted_rand_index >= 0.8
    assert score.directed_edge_accuracy >= 0.8
    assert len(result.families) == 3
    # Each recovered family is a tree: one root, n-1 edges.
    assert len(result.roots) == 3 and len(result.edges) == 36
    graph = result.to_graph()
    assert graph.num_edges == 36 and len(graph.families()) == 3


def test_cues_together_find_the_roots(synthetic_zoo):
    """Directed-edge accuracy is forgiving on shallow, wide trees (a wrong root flips only the edges on
    its path), so check the orientation on its own: the roots must be found."""
    truth = synthetic_zoo.true_parents(), synthetic_zoo.true_families()
    score = score_recovery(recover_lineage(synthetic_zoo.state_dicts()), *truth)
    assert score.root_accuracy >= 2 / 3
    with pytest.raises(ValueError):
        recover_lineage(synthetic_zoo.state_dicts(), direction_weight=-1.0)


def test_recovery_scores_can_fail():
    """The scorer is not vacuous: a reversed truth scores 0 on directed edges."""
    names = ["r", "c1", "c2"]
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2000, generator=g)
    states = {
        "r": {"w": base},
        "c1": {"w": base + 0.1 * torch.randn(2000, generator=g)},
        "c2": {"w": base + 0.1 * torch.randn(2000, generator=g)},
    }
    result = recover_lineage(states)
    truth_families = {n: 0 for n in names}
    recovered = result.parent_of()
    reversed_truth = {n: None for n in names}
    for child, parent in recovered.items():
        if parent is not None:
            reversed_truth[parent] = child  # claim the opposite direction
    score = score_recovery(result, {**reversed_truth}, truth_families)
    assert score.directed_edge_accuracy < 0.8


def test_recovery_keeps_architectures_apart_and_rejects_bad_input():
    # Different tensor shapes can never be relatives: each architecture is recovered on its own.
    result = recover_lineage({"a": {"w": torch.zeros(3)}, "b": {"w": torch.zeros(4)}})
    assert len(result.families) == 2 and result.edges == [] and sorted(result.roots) == ["a", "b"]
    assert np.isnan(result.distances[0, 1])
    with pytest.raises(ValueError, match="one tensor shape"):
        recover_lineage({"a": {"w": torch.zeros(3)}, "b": {"w": torch.zeros(4)}}, n_families=1)
    with pytest.raises(ValueError, match="at least two"):
        recover_lineage({"a": {"w": torch.zeros(3)}})
    with pytest.raises(ValueError, match="non-finite"):
        recover_lineage({"a": {"w": torch.zeros(3)}, "b": {"w": torch.tensor([0.0, float("inf"), 1.0])}})
