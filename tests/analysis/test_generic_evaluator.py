"""The fast generic evaluator: every grid point equals a direct forward pass at its coordinates.

Float64 models, so "equal" means to 1e-10 relative; each test also checks that the
shortcut it is about (first layer once per plane, BatchNorm folded, faster pooling)
is really in use, so a silent fallback to the plain path would fail it.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from analysis import landscape as L
from analysis import zoo
from analysis.directions import random_direction
from analysis.evaluators import BatchedEvaluator, make_evaluator
from analysis.generic_evaluator import PointEvaluator

CNN = {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4, 6], "out": 10, "batchnorm": True}


def _cnn(seed=0):
    torch.manual_seed(seed)
    model = zoo.build(CNN).double().eval()
    for name, buf in model.named_buffers():  # running statistics that are not the defaults
        if name.endswith("running_mean"):
            buf.normal_(0, 0.3)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def digits():
    from analysis import data

    X, y = data.load("digits", "all")
    return X[:200].double(), y[:200]


def _at(model, centre, d1, d2, a, b):
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in fresh.named_parameters():
            p.copy_(centre[n] + a * d1[n] + b * d2[n])
    return fresh.eval()


def _assert_every_point_direct(surf, model, score):
    centre = {n: p.detach().clone() for n, p in model.named_parameters()}
    for i, a in enumerate(surf.a):
        for j, b in enumerate(surf.b):
            direct = score(_at(model, centre, surf.d1, surf.d2, float(a), float(b)))
            assert surf.loss[i, j] == pytest.approx(direct, rel=1e-10), (i, j)


@pytest.mark.parametrize("how", [{}, {"threads": 2}, {"point_batching": "batched"}])
def test_cnn_with_batchnorm_every_point_direct(digits, how):
    X, y = digits
    model = _cnn()
    surf = L.plane(model, (X, y), resolution=(5, 4), span=1.5, seed=2, **how)
    _assert_every_point_direct(surf, model, lambda m: F.cross_entropy(m(X), y).item())
    assert np.ptp(surf.loss) > 0.5  # a surface with real relief, not a flat one that anything matches


def test_cnn_uses_first_layer_batchnorm_fold_and_fast_pooling(digits):
    X, y = digits
    model = _cnn()
    centre = {n: p.detach() for n, p in model.named_parameters()}
    dirs = [random_direction(centre, seed=s) for s in (0, 1)]
    ev = make_evaluator(model, centre, dirs, X, y, "keep", 2**12)
    assert isinstance(ev, PointEvaluator) and ev.thread_safe
    assert (ev.first_name, ev.folded_bn, ev.faster_kernels) == ("conv0", "bn0", True)
    assert ev.chunk < len(X)  # several chunks, so the stored first-layer outputs are sliced per chunk
    batched = make_evaluator(model, centre, dirs, X, y, "keep", 2**12, point_batching="batched")
    assert isinstance(batched, BatchedEvaluator)
    coefs = np.array([[0.3, -0.7], [1.1, 0.2], [0.0, 0.0]])
    (fast, fast_acc), (slow, slow_acc) = ev.evaluate(coefs), batched.evaluate(coefs)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    np.testing.assert_array_equal(fast_acc, slow_acc)
    # a direction that moves the BatchNorm's scale keeps the BatchNorm as a layer, still exact
    moving = {n: d.clone() for n, d in dirs[0].items()}
    moving["bn0.weight"].normal_()
    ev2 = make_evaluator(model, centre, [moving, dirs[1]], X, y, "keep", 2**12)
    assert ev2.first_name == "conv0" and ev2.folded_bn is None
    ref = make_evaluator(model, centre, [moving, dirs[1]], X, y, "keep", 2**12, point_batching="batched")
    np.testing.assert_allclose(ev2.evaluate(coefs)[0], ref.evaluate(coefs)[0], rtol=1e-12)


class _Scaled(nn.Module):
    """A parent that uses its own parameter on the input before the first layer: no shortcut allowed."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(64))
        self.body = nn.Sequential(nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10))

    def forward(self, x):
        return self.body(x * self.scale)


def test_input_that_moves_with_the_point_disables_the_first_layer_shortcut(digits):
    X, y = digits
    torch.manual_seed(0)
    model = _Scaled().double().eval()
    surf = L.plane(model, (X, y), resolution=3, span=1.0, include_bias=True)
    _assert_every_point_direct(surf, model, lambda m: F.cross_entropy(m(X), y).item())
    centre = {n: p.detach() for n, p in model.named_parameters()}
    ev = make_evaluator(model, centre, [surf.d1, surf.d2], X, y, "keep", 2**12)
    assert ev.first_name is None


class _NextToken(nn.Module):
    """A causal language model as Terrain sees one: token ids in, logits out."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        return self.lm(input_ids=ids).logits


def _next_token_loss(logits, ids):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def _next_token_accuracy(logits, ids):
    return (logits[:, :-1].argmax(-1) == ids[:, 1:]).double().mean()


def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    config = GPT2Config(vocab_size=11, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0,
                        attn_implementation="eager")
    torch.manual_seed(0)
    return _NextToken(GPT2LMHeadModel(config)).double().eval()


@pytest.mark.parametrize("threads", [None, 2])
def test_gpt2_every_point_direct_with_a_callers_loss(threads):
    model = _tiny_gpt2()
    ids = torch.randint(0, 11, (24, 8), generator=torch.Generator().manual_seed(1))
    surf = L.plane(model, (ids, ids), resolution=3, span=1.0, seed=4, threads=threads, loss_fn=_next_token_loss,
                   accuracy_fn=_next_token_accuracy)
    _assert_every_point_direct(surf, model, lambda m: _next_token_loss(m(ids), ids).item())
    centre = {n: p.detach() for n, p in model.named_parameters()}
    direct_acc = _next_token_accuracy(_at(model, centre, surf.d1, surf.d2, float(surf.a[0]), float(surf.b[2]))(ids), ids)
    assert surf.accuracy[0, 2] == pytest.approx(direct_acc.item(), abs=1e-12)
    ev = make_evaluator(model, centre, [surf.d1, surf.d2], ids, ids, "keep", 2**20, loss_fn=_next_token_loss)
    assert ev.first_name == "lm.transformer.wte"  # the embedding lookup is the shared first layer


def test_default_loss_on_token_targets_is_the_mean_over_positions():
    model = _tiny_gpt2()
    ids = torch.randint(0, 11, (10, 8), generator=torch.Generator().manual_seed(2))
    loss, acc = L.evaluate_points(model, (ids, ids), [random_direction(dict(model.named_parameters()), seed=0)],
                                  np.array([[0.0]]))
    logits = model(ids)
    assert loss[0] == pytest.approx(F.cross_entropy(logits.reshape(-1, 11), ids.reshape(-1)).item(), rel=1e-10)
    assert acc[0] == pytest.approx((logits.argmax(-1) == ids).double().mean().item(), abs=1e-12)
