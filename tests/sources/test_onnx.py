"""ONNX graphs: a plane through onnxruntime equals the same plane of the torch model (1e-5)."""


import io

import numpy as np
import pytest
import torch

from analysis import curvature, landscape, zoo
from analysis.sources import load_model


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")


def export(model, X, path, **kwargs):
    buf = io.BytesIO()
    torch.onnx.export(model, (X,), buf, dynamo=False, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}}, **kwargs)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture()
def cnn_and_onnx(tmp_path):
    torch.manual_seed(0)
    model = zoo.build({"kind": "cnn", "image_size": 8, "channels": [4, 6], "out": 3, "in_channels": 1, "batchnorm": True}).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(12, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (12,), generator=g)
    return model, (X, y), export(model, X, tmp_path / "model.onnx", do_constant_folding=False)


def test_onnx_plane_equals_torch_plane(cnn_and_onnx):
    model, data, path = cnn_and_onnx
    lm = load_model(path)
    assert lm.provenance["source"] == "onnx" and not lm.differentiable and lm.input_kind == "images"
    torch_params = dict(model.named_parameters())
    onnx_names = {onnx_name: p for p, onnx_name in lm.module.feeds}
    assert set(torch_params) <= set(onnx_names)  # every torch parameter is fed by name (BN statistics too)
    assert lm.provenance["num_parameters"] >= sum(p.numel() for p in torch_params.values())
    # the same filter-normalised directions on both sides, keyed by name
    d1 = landscape.random_direction({n: p.detach() for n, p in torch_params.items()}, seed=3, include_bias=True)
    d2 = landscape.random_direction({n: p.detach() for n, p in torch_params.items()}, seed=4, include_bias=True)
    want = landscape.plane(model, data, axes="custom", directions=(d1, d2), resolution=5, span=1.0)

    path_of = {onnx_name: p for p, onnx_name in lm.module.feeds}
    centre = dict(lm.module.named_parameters())
    od = [{path_of[n]: d[n] if n in d else torch.zeros_like(centre[path_of[n]]) for n in path_of} for d in (d1, d2)]
    got = landscape.plane(lm, data, axes="custom", directions=tuple(od), resolution=5, span=1.0)
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.accuracy, want.accuracy)
    assert got.centre_loss == pytest.approx(want.centre_loss, rel=1e-5)
    line = landscape.line(lm, data, direction=od[0], steps=5, span=1.0)
    np.testing.assert_allclose(line.loss, want.loss[:, 2], rtol=1e-5)


def test_onnx_is_forward_only(cnn_and_onnx):
    _, data, path = cnn_and_onnx
    with pytest.raises(ValueError, match="forward-only"):
        curvature.HessianOperator(load_model(path), None, data)


def test_token_model_in_onnx(tmp_path):
    torch.manual_seed(0)
    model = zoo.build({"kind": "transformer", "p": 7, "d_model": 8, "heads": 2, "d_mlp": 16}).eval()
    X = torch.randint(0, 8, (10, 3))
    y = torch.randint(0, 7, (10,))
    lm = load_model(export(model, X, tmp_path / "t.onnx"))
    assert lm.input_kind == "tokens"
    with torch.no_grad():
        np.testing.assert_allclose(lm.module(X).numpy(), model(X).numpy(), rtol=1e-5, atol=1e-6)
    line = landscape.line(lm, (X, y), steps=3, span=0.5, seed=0)
    assert np.isfinite(line.loss).all()


class _CausalTokens(torch.nn.Module):
    """A token model with the standard causal mask buffer (-inf above the diagonal), as nn.Transformer users write it."""

    def __init__(self, vocab=11, width=8, length=5):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, width)
        self.att = torch.nn.MultiheadAttention(width, 2, batch_first=True)
        self.out = torch.nn.Linear(width, vocab)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(length))

    def forward(self, x):
        h = self.emb(x)
        a, _ = self.att(h, h, h, attn_mask=self.mask, need_weights=False)
        return self.out(h + a)


def test_an_infinite_constant_stays_a_constant_and_nan_is_refused(tmp_path):
    import onnx
    from onnx import numpy_helper

    from analysis.sources import SourceError

    torch.manual_seed(0)
    model = _CausalTokens().eval()
    X = torch.randint(0, 11, (6, 5))
    path = export(model, X, tmp_path / "causal.onnx")
    lm = load_model(path)
    assert all(torch.isfinite(p).all() for p in lm.module.parameters())  # the mask is not a weight to move
    assert lm.provenance["num_parameters"] == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        np.testing.assert_allclose(lm.module(X).numpy(), model(X).numpy(), rtol=1e-5, atol=1e-6)
    line = landscape.line(lm, (X, torch.zeros(6, 5, 11)), steps=3, span=0.5, seed=0)  # float targets: squared error
    assert np.isfinite(line.loss).all()

    graph = onnx.load(str(path))
    weight = next(t for t in graph.graph.initializer if t.name == "emb.weight")
    poisoned = numpy_helper.to_array(weight).copy()
    poisoned[0, 0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(poisoned, "emb.weight"))
    onnx.save(graph, str(tmp_path / "nan.onnx"))
    with pytest.raises(SourceError, match="'emb.weight' holds NaN"):
        load_model(tmp_path / "nan.onnx")


def test_weight_matching_of_onnx_graphs_says_what_it_needs(cnn_and_onnx):
    from analysis import connectivity

    _, _, path = cnn_and_onnx
    with pytest.raises(NotImplementedError, match="needs Terrain or Hugging Face checkpoints, not ONNX graphs"):
        connectivity.weight_matching(load_model(path), load_model(path))
