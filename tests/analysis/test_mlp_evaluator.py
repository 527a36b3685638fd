"""The fast MLP evaluator walks along grid rows folding in ReLU sign changes; every
point must still equal a plain forward pass at theta + sum_k c_k d_k."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from analysis import data, zoo
from analysis import landscape as L
from analysis.mlp_evaluator import MLPEvaluator


def _model(spec, seed=0):
    torch.manual_seed(seed)
    return zoo.build(spec).double().eval()


def _direct(model, coef, directions, X, y):
    fresh = copy.deepcopy(model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in fresh.named_parameters():
            p.copy_(params[name] + sum(c * d[name] for c, d in zip(coef, directions)))
        out = fresh(X)
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).double().mean().item()


@pytest.fixture(scope="module")
def xy():
    X, y = data.load("digits", "all")
    return X[:400].double(), y[:400]


@pytest.fixture
def walks(monkeypatch):
    """Counts the points evaluated by walking (rather than densely)."""
    seen = []
    original = MLPEvaluator._walk

    def spy(self, T, side, *args):
        seen.extend(side)
        return original(self, T, side, *args)

    monkeypatch.setattr(MLPEvaluator, "_walk", spy)
    return seen


@pytest.mark.parametrize("hidden", [[48, 40, 24], [16]], ids=["three-hidden", "one-hidden"])
@pytest.mark.parametrize("memory_budget", [16 * 2**20, 40_000], ids=["one-chunk", "many-chunks"])
def test_every_point_of_a_row_with_many_sign_changes_is_exact(xy, walks, memory_budget, hidden):
    """With one hidden layer the walk ends on the logits; with more, the tail computes them."""
    X, y = xy
    model = _model({"kind": "mlp", "in": 64, "hidden": hidden, "out": 10})
    centre = {k: v.detach() for k, v in model.named_parameters()}
    d1 = L.random_direction(centre, seed=1)
    d2 = L.random_direction(centre, seed=2)
    # A wide span: many first-layer units change sign along the row.
    coefs = np.array([[0.3, b] for b in np.linspace(-1.5, 1.5, 23)])
    losses, accs = L.evaluate_points(model, (X, y), [d1, d2], coefs, memory_budget=memory_budget, batch_size=64)
    assert len(walks) >= 20, "the row was not evaluated by walking"
    for k, coef in enumerate(coefs):
        loss, acc = _direct(model, coef, [d1, d2], X, y)
        assert losses[k] == pytest.approx(loss, rel=1e-10), k
        assert accs[k] == pytest.approx(acc, abs=1e-12), k


def test_walk_really_folds_in_sign_changes(xy, monkeypatch):
    """Without the sparse corrections the same row would be visibly wrong."""
    X, y = xy
    model = _model({"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}, seed=3)
    centre = {k: v.detach() for k, v in model.named_parameters()}
    d1 = L.random_direction(centre, seed=4)
    coefs = np.linspace(-0.8, 0.8, 41)[:, None]
    direct = [_direct(model, c, [d1], X, y)[0] for c in coefs]
    original = MLPEvaluator._walk
    walked = []

    def walk(self, T, side, offsets, A, B, mask, where, record, corrections=True):
        walked.append(len(where))
        return original(self, T, side, offsets, A, B, mask, where if corrections else where[:0], record)

    monkeypatch.setattr(MLPEvaluator, "_walk", walk)
    exact, _ = L.evaluate_points(model, (X, y), [d1], coefs, batch_size=64)
    assert walked and min(walked) > 100, walked  # both sides walked, with many sign changes
    np.testing.assert_allclose(exact, direct, rtol=1e-10)

    monkeypatch.setattr(MLPEvaluator, "_walk", lambda *args: walk(*args, corrections=False))
    frozen, _ = L.evaluate_points(model, (X, y), [d1], coefs, batch_size=64)
    assert np.max(np.abs(frozen - direct) / np.abs(direct)) > 1e-3


def test_plane_on_a_float32_model_matches_direct_evaluation(xy, walks):
    X, y = xy
    torch.manual_seed(5)
    model = zoo.build({"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}).eval()
    surf = L.plane(model, (X.float(), y), resolution=17, span=1.0)
    assert len(walks) > 100
    for i, j in [(0, 0), (16, 16), (8, 3), (5, 11), (13, 8)]:
        loss, _ = _direct(model, (surf.a[i], surf.b[j]), [surf.d1, surf.d2], X.float(), y)
        assert surf.loss[i, j] == pytest.approx(loss, rel=2e-5), (i, j)
