"""Kinship of weight deltas: known answers."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.lineage.kinship import delta_kinship, delta_similarity, weight_deltas


def state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "fc1.weight": torch.randn(16, 8, generator=g),
        "fc1.bias": torch.randn(16, generator=g),
        "fc2.weight": torch.randn(4, 16, generator=g),
        "bn.num_batches_tracked": torch.tensor(5),
    }


def add(base, delta, scale=1.0):
    return {k: (v + scale * delta[k] if k in delta else v.clone()) for k, v in base.items()}


def test_identical_deltas_give_pearson_one_and_distance_zero():
    base = state(0)
    delta = {k: v for k, v in state(1).items() if v.is_floating_point()}
    result = delta_kinship(base, add(base, delta), add(base, delta))
    assert result.pearson == pytest.approx(1.0, abs=1e-12)
    assert result.cosine == pytest.approx(1.0, abs=1e-12)
    assert result.euclidean == pytest.approx(0.0, abs=1e-12)
    for layer in result.layers:
        assert layer.similarity.pearson == pytest.approx(1.0, abs=1e-12)
        assert layer.similarity.euclidean == pytest.approx(0.0, abs=1e-12)
    assert result.skipped == ["bn.num_batches_tracked"]
    assert [l.name for l in result.layers] == ["fc1.weight", "fc1.bias", "fc2.weight"]


def test_orthogonal_deltas_give_cosine_zero():
    base = state(0)
    d1 = {k: torch.zeros_like(v) for k, v in base.items() if v.is_floating_point()}
    d2 = {k: torch.zeros_like(v) for k, v in base.items() if v.is_floating_point()}
    d1["fc1.weight"][0, 0] = 3.0  # disjoint supports: exactly orthogonal
    d2["fc1.weight"][1, 1] = 4.0
    d2["fc2.weight"][2, 3] = -1.0
    result = delta_kinship(base, add(base, d1), add(base, d2))
    assert result.cosine == pytest.approx(0.0, abs=1e-12)
    assert result.euclidean == pytest.approx(math.sqrt(9 + 16 + 1), rel=1e-6)  # float32 weights
    assert math.isnan(result.layer("fc1.bias").cosine)  # zero deltas: undefined, not 0
    assert result.layer("fc1.weight").cosine == pytest.approx(0.0, abs=1e-12)


def test_opposite_and_scaled_deltas():
    base = state(0)
    delta = {k: v for k, v in state(2).items() if v.is_floating_point()}
    opposite = delta_kinship(base, add(base, delta), add(base, delta, -1.0))
    assert opposite.pearson == pytest.approx(-1.0, abs=1e-9)
    assert opposite.cosine == pytest.approx(-1.0, abs=1e-9)
    scaled = delta_kinship(base, add(base, delta), add(base, delta, 3.0))
    assert scaled.pearson == pytest.approx(1.0, abs=1e-9) and scaled.cosine == pytest.approx(1.0, abs=1e-9)
    total = math.sqrt(sum(float((2 * v.double()).pow(2).sum()) for v in delta.values()))
    assert scaled.euclidean == pytest.approx(total, rel=1e-6)


def test_random_deltas_match_numpy():
    import numpy as np

    a = torch.randn(1000, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    b = 0.3 * a + torch.randn(1000, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    s = delta_similarity(a, b)
    assert s.pearson == pytest.approx(float(np.corrcoef(a.numpy(), b.numpy())[0, 1]), rel=1e-10)
    assert s.cosine == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=1e-10)


def test_bad_inputs_raise_clear_errors():
    base = state(0)
    other = dict(base)
    other["fc2.weight"] = torch.zeros(5, 16)
    with pytest.raises(ValueError, match="shape mismatch for 'fc2.weight'"):
        weight_deltas(base, other)
    missing = {k: v for k, v in base.items() if k != "fc1.bias"}
    with pytest.raises(ValueError, match="lacks"):
        delta_kinship(base, missing, base)
    nan = dict(base)
    nan["fc1.bias"] = torch.full((16,), float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        delta_kinship(base, nan, base)
    with pytest.raises(ValueError, match="no floating-point"):
        delta_kinship(base, base, base, include=["bn.num_batches_tracked"])
