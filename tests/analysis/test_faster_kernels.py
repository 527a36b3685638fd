"""Faster kernels and BatchNorm folds on landscape replicas: each computes the model's function.

Known answers: a max pool is exact whatever its layout, the fused tanh GELU is the same
formula as Hugging Face's Python one, and a plane over a ResNet whose every convolution
has its BatchNorm folded in equals direct forward passes point by point.  Each test also
checks the rewrite is really in use, so a silent fallback to the plain path fails it.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from analysis import batchnorm_folding, faster_kernels
from analysis import landscape as L
from analysis.directions import random_direction
from analysis.evaluators import make_evaluator
from analysis.generic_evaluator import PointEvaluator, _trace_leaf_calls

from .test_generic_evaluator import _at, _tiny_gpt2


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 1, 0), (3, 3, 1)])
def test_channels_last_pool_is_exactly_the_pool(kernel, stride, padding):
    x = torch.randn(5, 3, 9, 7, generator=torch.Generator().manual_seed(0)) - 2.0  # mostly negative: padding matters
    pool = nn.MaxPool2d(kernel, stride, padding)
    assert torch.equal(faster_kernels.ChannelsLastMaxPool2d(pool)(x), pool(x))
    assert faster_kernels.ChannelsLastMaxPool2d(pool)(x).is_contiguous()


def test_strided_pool_is_exactly_the_pool():
    x = torch.randn(4, 3, 9, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(faster_kernels.StridedMaxPool2d(2)(x), nn.MaxPool2d(2)(x))
    assert torch.equal(faster_kernels.StridedMaxPool2d(3)(x), nn.MaxPool2d(3)(x))


def test_fused_gelu_is_hugging_faces_python_tanh_gelu():
    from transformers.activations import FastGELUActivation, NewGELUActivation

    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    fused = faster_kernels.FusedTanhGELU()(x)
    for python_gelu in (NewGELUActivation(), FastGELUActivation()):
        assert (fused - python_gelu(x)).abs().max() < 1e-9  # FastGELU rounds sqrt(2/pi) to 10 digits
    assert (fused - F.gelu(x)).abs().max() > 1e-4  # not the erf GELU: the two really differ


def test_rewrite_of_a_gpt2_fuses_gelu_and_attention():
    model = _tiny_gpt2().lm
    copy_ = copy.deepcopy(model)
    faster_kernels.rewrite(copy_)
    assert copy_.config._attn_implementation == "sdpa" and model.config._attn_implementation == "eager"
    acts = [type(m).__name__ for m in copy_.modules() if "GELU" in type(m).__name__]
    assert acts and set(acts) == {"FusedTanhGELU"}
    ids = torch.randint(0, 11, (6, 8), generator=torch.Generator().manual_seed(0))
    assert faster_kernels.outputs_agree(copy_(input_ids=ids).logits, model(input_ids=ids).logits)


def test_outputs_agree_refuses_a_real_difference():
    x = torch.randn(10, 4, dtype=torch.float64)
    assert faster_kernels.outputs_agree(x + 1e-15, x)
    assert not faster_kernels.outputs_agree(x + 1e-6, x)
    assert not faster_kernels.outputs_agree(x.float(), x)


class _Images(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(pixel_values=x).logits


def _tiny_resnet():
    from transformers import ResNetConfig, ResNetForImageClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    config = ResNetConfig(num_channels=1, embedding_size=4, hidden_sizes=[4, 6], depths=[1, 1], layer_type="basic", num_labels=3)
    model = _Images(ResNetForImageClassification(config)).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(0, 0.3)  # BatchNorm scales and shifts away from 1 and 0: a fold that ignored them would show
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.3)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return model


def test_resnet_plane_with_every_batchnorm_folded_equals_direct_forward_passes():
    model = _tiny_resnet()
    g = torch.Generator().manual_seed(3)
    X, y = torch.randn(40, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g)
    centre = {n: p.detach() for n, p in model.named_parameters()}
    dirs = [random_direction(centre, seed=s) for s in (0, 1)]
    ev = make_evaluator(model, centre, dirs, X, y, "keep", 2**20)
    assert isinstance(ev, PointEvaluator) and ev.faster_kernels
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert ev.first_name == convs[0] and ev.folded_bn is not None  # the stem: stored outputs, its BatchNorm folded there
    assert sorted(f.layer for f in ev.folds) == sorted(convs[1:])  # every other convolution folded
    replica = ev._replica()["model"]
    assert any(isinstance(m, faster_kernels.ChannelsLastMaxPool2d) for m in replica.modules())  # the 3x3/2 stem pool
    surf = L.plane(model, (X, y), resolution=(4, 3), span=1.0, seed=5, threads=2)
    for i, a in enumerate(surf.a):
        for j, b in enumerate(surf.b):
            direct = F.cross_entropy(_at(model, centre, surf.d1, surf.d2, float(a), float(b))(X), y).item()
            assert surf.loss[i, j] == pytest.approx(direct, rel=1e-10), (i, j)
    assert np.ptp(surf.loss) > 0.05


class _LinearBatchNormNet(nn.Module):
    """Linear -> BatchNorm1d pairs outside an nn.Sequential (so the generic evaluator runs it), the second
    Linear with a bias of its own."""

    def __init__(self):
        super().__init__()
        self.a, self.bn_a = nn.Linear(6, 8, bias=False), nn.BatchNorm1d(8)
        self.b, self.bn_b = nn.Linear(8, 8), nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.bn_b(self.b(torch.tanh(self.bn_a(self.a(x)))))))


def _linear_bn_net():
    torch.manual_seed(1)
    model = _LinearBatchNormNet().double().eval()
    with torch.no_grad():
        for m in (model.bn_a, model.bn_b):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("include_bias", [False, True])
def test_linear_batchnorm_folds_are_exact_and_refused_when_the_norm_moves(include_bias):
    model = _linear_bn_net()
    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(30, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (30,), generator=g)
    surf = L.plane(model, (X, y), resolution=3, span=1.0, seed=1, include_bias=include_bias)
    centre = {n: p.detach() for n, p in model.named_parameters()}
    for i, a in enumerate(surf.a):
        for j, b in enumerate(surf.b):
            direct = F.cross_entropy(_at(model, centre, surf.d1, surf.d2, float(a), float(b))(X), y).item()
            assert surf.loss[i, j] == pytest.approx(direct, rel=1e-10), (i, j)
    ev = make_evaluator(model, centre, [surf.d1, surf.d2], X, y, "keep", 2**20)
    # the first pair is the stored first layer's; the second is folded into the flat weights unless its norm moves
    assert ev.first_name == "a"
    assert [f.layer for f in ev.folds] == ([] if include_bias else ["b"])


def test_fold_flat_scales_weights_and_shifts_the_centre_bias_only():
    fold = batchnorm_folding.Fold("l", "n", "w", "b", scale=torch.tensor([2.0, 3.0]), shift=torch.tensor([10.0, 20.0]))
    offsets, shapes = {"w": 0, "b": 4}, {"w": torch.Size([2, 2]), "b": torch.Size([2])}
    theta, direction = torch.arange(6.0), torch.ones(6)
    batchnorm_folding.fold_flat([fold], offsets, shapes, theta, [direction])
    assert theta.tolist() == [0.0, 2.0, 6.0, 9.0, 4 * 2 + 10, 5 * 3 + 20]
    assert direction.tolist() == [2.0, 2.0, 3.0, 3.0, 2.0, 3.0]


class _ConvUsedTwice(nn.Module):
    """A convolution whose output feeds its BatchNorm *and* a skip connection: folding the norm into the
    convolution would change the skip, so the evaluator must notice and keep the norm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)
        self.head = nn.Linear(3 * 8 * 8, 3)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        o = self.conv(h)
        return self.head((torch.relu(self.bn(o)) + o).flatten(1))


def test_a_fold_that_would_change_the_function_is_dropped():
    torch.manual_seed(0)
    model = _ConvUsedTwice().double().eval()
    with torch.no_grad():
        model.bn.running_mean.normal_(0, 0.5)
        model.bn.running_var.uniform_(0.3, 2.0)
    g = torch.Generator().manual_seed(4)
    X, y = torch.randn(20, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (20,), generator=g)
    centre = {n: p.detach() for n, p in model.named_parameters()}
    dirs = [random_direction(centre, seed=s) for s in (0, 1)]
    names = {id(p): n for n, p in model.named_parameters()}
    with torch.no_grad():
        calls = _trace_leaf_calls(model, X[:2])
    assert [f.layer for f in batchnorm_folding.plan(calls, centre, dirs, names, torch.float64, set())] == ["conv"]
    ev = make_evaluator(model, centre, dirs, X, y, "keep", 2**20)
    assert ev.folds == []  # planned, then refused by the check on a probe
    coefs = np.array([[0.4, -0.6], [-1.0, 0.3]])
    for (a, b), loss in zip(coefs, ev.evaluate(coefs)[0]):
        assert loss == pytest.approx(F.cross_entropy(_at(model, centre, dirs[0], dirs[1], a, b)(X), y).item(), rel=1e-10)
