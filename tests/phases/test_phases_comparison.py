"""Between-seed metrics against known answers: mc, CKA, L2 distance."""

import copy
import math

import numpy as np
import pytest
import torch

from analysis import zoo
from analysis.phases import l2_distance, linear_cka, mc_from_path, mode_connectivity

BARRIER_SPEC = {"kind": "mlp", "in": 1, "hidden": [2], "out": 2, "bias": True}


def _barrier_pair():
    """Two ReLU nets computing the same correct classifier whose midpoint is constant.

    Data: x in {+-0.5, +-1, +-2}, label 1 iff x > 0.
    a: h = [relu(x), relu(-x)], logits = [h1 + 0.1, h0]  -> correct everywhere (|x| >= 0.5 > 0.1)
    b: the same network with its two hidden units swapped (a permutation: same function).
    Midpoint: fc0 weights (1 + -1)/2 = 0, so h = 0 and logits = out.bias = [0.1, 0]:
    class 0 for every x, i.e. train error 0.5 (all positives wrong).
    """
    torch.manual_seed(0)
    a = zoo.build(BARRIER_SPEC)
    with torch.no_grad():
        a.fc0.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        a.fc0.bias.zero_()
        a.out.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        a.out.bias.copy_(torch.tensor([0.1, 0.0]))
    b = copy.deepcopy(a)
    with torch.no_grad():
        b.fc0.weight.copy_(a.fc0.weight[[1, 0]])
        b.out.weight.copy_(a.out.weight[:, [1, 0]])
    x = torch.tensor([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
    y = (x[:, 0] > 0).long()
    return a, b, (x, y)


def test_barrier_construction_is_what_the_docstring_says():
    a, b, (x, y) = _barrier_pair()
    with torch.no_grad():
        assert torch.equal(a(x).argmax(1), y) and torch.allclose(a(x), b(x))


def test_constructed_barrier_gives_negative_mc():
    a, b, data = _barrier_pair()
    before = copy.deepcopy(a.state_dict())
    res = mode_connectivity(a, b, data, steps=11)
    assert res.v0 == 0.0 and res.v1 == 0.0
    assert res.t_star == pytest.approx(0.5)
    assert res.mc == pytest.approx(-0.5)  # (0 + 0)/2 - 0.5
    assert float(res) == res.mc
    assert res.barrier_height == pytest.approx(0.5)
    # the caller's models are untouched
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())


def test_weight_matching_removes_a_pure_permutation_barrier():
    a, b, data = _barrier_pair()
    res = mode_connectivity(a, b, data, steps=11, align=True)
    assert res.mc == pytest.approx(0.0, abs=1e-12)
    assert np.all(res.values == 0.0)


def test_identical_models_mc_zero_cka_one():
    torch.manual_seed(1)
    model = zoo.build({"kind": "mlp", "in": 8, "hidden": [16], "out": 4})
    X = torch.randn(64, 8)
    y = torch.randint(0, 4, (64,))
    res = mode_connectivity(model, copy.deepcopy(model), (X, y), steps=5)
    assert res.mc == 0.0
    assert np.allclose(res.values, res.values[0])
    with torch.no_grad():
        logits = model(X)
    assert linear_cka(logits, logits) == pytest.approx(1.0, abs=1e-12)
    assert l2_distance(model.state_dict(), copy.deepcopy(model).state_dict()) == 0.0


def test_mc_formula_on_hand_built_profiles():
    t = np.linspace(0, 1, 5)
    assert mc_from_path(t, [0.1, 0.5, 0.9, 0.5, 0.1]) == (pytest.approx(-0.8), 0.5)  # barrier
    mc, t_star = mc_from_path(t, [0.6, 0.3, 0.1, 0.3, 0.4])  # a dip below the endpoints
    assert mc == pytest.approx(0.4) and t_star == 0.5
    assert mc_from_path(t, [0.2] * 5) == (0.0, 0.5)
    # symmetric in the two models, even for a monotone profile where the endpoints tie
    ramp = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    assert mc_from_path(t, ramp)[0] == mc_from_path(t, ramp[::-1])[0] == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="endpoints"):
        mc_from_path([0.1, 0.5], [0.0, 1.0])


def _random_reps(n=200, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def _cka_via_hsic(X, Y):
    """Independent reference: CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with centred linear kernels."""
    n = X.shape[0]
    H = torch.eye(n, dtype=torch.float64) - 1.0 / n
    K, L = X @ X.T, Y @ Y.T
    hsic = lambda A, B: torch.trace(A @ H @ B @ H)  # noqa: E731
    return float(hsic(K, L) / torch.sqrt(hsic(K, K) * hsic(L, L)))


def test_cka_matches_the_hsic_formula():
    X = _random_reps(seed=0)
    Y = X[:, :6] @ _random_reps(6, 9, seed=1) + 0.5 * _random_reps(200, 9, seed=2)
    assert linear_cka(X, Y) == pytest.approx(_cka_via_hsic(X, Y), rel=1e-10)
    assert linear_cka(X, Y) == pytest.approx(linear_cka(Y, X), rel=1e-12)


def test_cka_invariant_to_isotropic_scaling_and_orthogonal_maps():
    X = _random_reps(seed=3)
    Y = torch.tanh(X @ _random_reps(12, 10, seed=4))
    Q, _ = torch.linalg.qr(_random_reps(12, 12, seed=5))
    base = linear_cka(X, Y)
    assert 0.05 < base < 0.95
    assert linear_cka(7.5 * X, Y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(X @ Q, Y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(3.0 * X @ Q, 0.01 * Y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(X, X @ Q) == pytest.approx(1.0, abs=1e-12)
    # translation is removed by centring
    assert linear_cka(X + 100.0, Y) == pytest.approx(base, rel=1e-8)
    # but not invariant to an arbitrary invertible linear map
    A = torch.diag(torch.logspace(0, 2, 12, dtype=torch.float64))
    assert linear_cka(X @ A, X) < 0.9


def test_cka_of_unrelated_representations_is_small_and_constant_is_nan():
    X = _random_reps(2000, 5, seed=6)
    Y = _random_reps(2000, 5, seed=7)
    assert linear_cka(X, Y) < 0.05
    assert math.isnan(linear_cka(torch.ones(10, 3), X[:10]))
    with pytest.raises(ValueError, match="rows"):
        linear_cka(X[:10], X[:11])


def test_l2_distance_known_value_and_errors():
    a = {"w": torch.zeros(2, 2), "b": torch.zeros(3), "n": torch.tensor(5)}
    b = {"w": torch.full((2, 2), 1.0), "b": torch.tensor([0.0, 0.0, 3.0]), "n": torch.tensor(9)}
    assert l2_distance(a, b) == pytest.approx(math.sqrt(4 * 1.0 + 9.0))  # integer buffers skipped
    with pytest.raises(ValueError, match="keys"):
        l2_distance(a, {"w": a["w"]})
    with pytest.raises(ValueError, match="shape"):
        l2_distance(a, {**b, "b": torch.zeros(4)})
