"""Neighbours of a near-copy pair: hung on the end their per-tensor updates point to (known constructions)."""

from __future__ import annotations

import functools

import networkx as nx
import numpy as np
import pytest
import torch

from analysis.lineage.near_copies import near_copy_pairs, settle_near_copies, tensor_vote
from analysis.lineage.update_spectra import matrix_distances, schatten_size

SHAPES = {"a": (20, 30), "b": (30, 16), "c": (12, 40)}


def _low_rank(seed: int, rank: int, size: float) -> dict[str, torch.Tensor]:
    """Per matrix a random update of ``rank`` with Frobenius norm ``size``."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, (m, n) in SHAPES.items():
        u = torch.randn(m, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, n, generator=g, dtype=torch.float64)
        out[k] = u * size / u.norm()
    return out


def _plus(state: dict, update: dict) -> dict:
    return {k: state[k] + update[k] for k in state}


def _family(child_of_copy: bool) -> list[dict[str, torch.Tensor]]:
    """[parent, near-copy child (a rank-2 step, 1/10 of a fine-tune), x]: x fine-tunes the parent, or the copy."""
    parent = {k: torch.randn(*shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
              for k, shape in SHAPES.items()}
    copy = _plus(parent, _low_rank(1, 2, 0.1))
    x = _plus(copy if child_of_copy else parent, _low_rank(2, 3, 1.0))
    return [parent, copy, x]


def _tied_distances() -> np.ndarray:
    """Summed distances that cannot tell: x is 9.95 from one end and 10 from the other, the pair 1 apart."""
    return np.array([[0.0, 1.0, 10.0], [1.0, 0.0, 9.95], [10.0, 9.95, 0.0]])


def test_tensor_vote_sums_log_ratios_over_tensors_both_sizes_measure():
    assert tensor_vote(np.array([1.0, 2.0, 0.0]), np.array([2.0, 2.0, 5.0])) == pytest.approx(np.log(2.0))
    assert tensor_vote(np.array([3.0]), np.array([1.0])) == pytest.approx(-np.log(3.0))


def test_matrix_distances_are_the_per_matrix_schatten_sizes_and_leave_vectors_out():
    states = _family(False)
    states = [s | {"bias": torch.full((30,), float(i))} for i, s in enumerate(states)]
    sizes = matrix_distances(states, ["a", "bias", "b", "c"], [(0, 2), (1, 2)])
    assert sizes.shape == (3, 2)  # three matrices, two pairs: the bias has no row
    for row, k in enumerate("abc"):
        assert sizes[row, 0] == pytest.approx(schatten_size(states[2][k] - states[0][k]), rel=1e-4)
        assert sizes[row, 1] == pytest.approx(schatten_size(states[2][k] - states[1][k]), rel=1e-4)


@pytest.mark.parametrize("child_of_copy", [False, True])
def test_a_tied_neighbour_hangs_on_the_end_its_tensors_point_to(child_of_copy):
    states = _family(child_of_copy)
    keys = list(SHAPES)
    sizes = functools.partial(matrix_distances, states, keys)
    # Whichever end the spanning tree chose, the tensors decide: one fine-tune from the true host, two from the other end.
    for wrong in (0, 1):
        tree = nx.Graph([(0, 1), (wrong, 2)])
        settled = settle_near_copies(tree, _tied_distances(), sizes)
        host = 1 if child_of_copy else 0
        assert {frozenset(e) for e in settled.edges} == {frozenset((0, 1)), frozenset((host, 2))}
        assert {frozenset(e) for e in tree.edges} == {frozenset((0, 1)), frozenset((wrong, 2))}  # a copy was changed


def test_only_near_copies_and_tied_resolvable_neighbours_are_moved():
    states = _family(False)
    sizes = functools.partial(matrix_distances, states, list(SHAPES))
    tree = nx.Graph([(0, 1), (1, 2)])
    far_pair = _tied_distances()
    far_pair[0, 1] = far_pair[1, 0] = 5.0  # half of x's distance: not a near-copy
    assert near_copy_pairs(tree, far_pair) == []
    assert set(settle_near_copies(tree, far_pair, sizes).edges) == set(tree.edges)
    clear = _tied_distances()
    clear[2, 1] = clear[1, 2] = 9.5  # nearer the copy by half the pair's distance: not tied
    assert set(settle_near_copies(tree, clear, sizes).edges) == set(tree.edges)
    tiny = _tied_distances() * np.array([[1, 0.01, 1], [0.01, 1, 1], [1, 1, 1]])
    tiny[1, 2] = tiny[2, 1] = 9.9995  # a step of 1/1000 of x's update: below MIN_STEP, left to the tree
    assert set(settle_near_copies(tree, tiny, sizes).edges) == set(tree.edges)
    assert {frozenset(e) for e in settle_near_copies(tree, _tied_distances(), sizes).edges} == {
        frozenset((0, 1)), frozenset((0, 2))}
