"""Refining the tree where update distances cannot decide: known constructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.lineage.recovery import recover_lineage, score_recovery
from analysis.lineage.tree_refinement import fold_penalties


def _gram(points: np.ndarray) -> np.ndarray:
    return points @ points.T


def test_fold_penalty_charges_a_chain_that_retraces_its_parents_update():
    """p at the origin, u one step along e0 (length 2); seen from u, v0 lies back towards p, v1 at a right angle."""
    points = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [2.0, 1.0]])  # p, u, v0, v1
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    penalty = fold_penalties([0, 1, 2, 3], d, _gram(points), {1: 0})
    # cos at u between p - u = (-2, 0) and v0 - u = (-1, 1): 1/sqrt(2); charged (0.707 - 0.2) * |u - p| = 1.014.
    assert penalty[1, 2] == pytest.approx((1 / np.sqrt(2) - 0.2) * 2.0)
    assert penalty[1, 3] == 0.0  # a right angle: an ordinary chain
    assert penalty[0].sum() == 0.0 and penalty[2].sum() == 0.0  # a root, and a model without children so far
    assert fold_penalties([0, 1, 2, 3], d, _gram(points), {1: 0}, fold_cosine=0.8)[1, 2] == 0.0


def _matrix(seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(24, 24, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_far_fine_tune_hangs_off_the_centre_of_its_tight_cluster():
    """f with four ordinary children and one far one (c) whose two barely moving children lean back towards f.

    Their distances to f are shorter than c's by less than the cluster's spread, so the nearest-relative
    tree hung the whole cluster off one of c's children (f -> g0 -> c -> g1); c is the cluster's centre.
    """
    f = _matrix(0)
    c = f + _matrix(1, 0.6)
    states = {"f": f, "c": c} | {name: f + _matrix(2 + k, 0.15) for k, name in enumerate("abde")}
    for k in range(2):
        states[f"c.g{k}"] = c + _matrix(10 + k, 0.01) - 0.004 * (c - f)
    parents = {"f": (), "c": ("f",), "c.g0": ("c",), "c.g1": ("c",)} | {name: ("f",) for name in "abde"}
    result = recover_lineage({name: {"w": w} for name, w in states.items()})
    score = score_recovery(result, parents, {name: 0 for name in parents})
    assert result.parent_of() == {name: (p[0] if p else None) for name, p in parents.items()}
    assert score.directed_edge_accuracy == 1.0
