"""Hugging Face folders: every grid point equals a direct evaluation, and the top-3 Hessian
eigenvalues equal those of a dense Hessian built from the model's own ``labels=`` loss."""

import copy

import numpy as np
import pytest
import torch

from analysis import curvature, landscape
from analysis.sources import LoadedModel, load_model

from .conftest import FAMILIES, make_data


def _reference_loss(module, params, kwargs):
    """The Hugging Face model's own loss (its ``labels=`` code path) at ``params``."""
    inner = {n[len("model."):]: p for n, p in params.items()}
    return torch.func.functional_call(module.model, inner, args=(), kwargs=kwargs).loss


@pytest.mark.parametrize("family", FAMILIES)
def test_loads_with_provenance(tiny_folders, family):
    lm = load_model(tiny_folders[family])
    assert isinstance(lm, LoadedModel)
    assert lm.provenance["source"] == "huggingface"
    assert lm.provenance["model_type"] == family.split("-")[0]
    assert lm.provenance["num_parameters"] == sum(p.numel() for p in lm.module.parameters())
    assert lm.input_kind == ("images" if family in ("vit", "resnet", "convnext") else "tokens")
    assert not lm.module.training
    want = {"gpt2": "causal-lm", "llama": "causal-lm", "gpt_neox": "causal-lm", "bert-mlm": "masked-lm", "roberta-mlm": "masked-lm"}
    assert lm.provenance["head"] == want.get(family, "image-classification" if lm.input_kind == "images" else "sequence-classification")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_plane_point_equals_direct_evaluation(tiny_folders, family):
    lm = load_model(tiny_folders[family])
    X, y, ref = make_data(family)
    surf = landscape.plane(lm, (X, y), resolution=(3, 4), span=0.5, seed=1)
    assert surf.computed.all()
    names = [n for n, _ in lm.module.named_parameters()]
    centre = {n: p.detach() for n, p in lm.module.named_parameters()}
    assert any(float(surf.d1[n].abs().sum()) > 0 for n in names)
    with torch.no_grad():
        for i, a in enumerate(surf.a):
            for j, b in enumerate(surf.b):
                p = {n: centre[n] + float(a) * surf.d1[n] + float(b) * surf.d2[n] for n in names}
                expected = float(_reference_loss(lm.module, p, ref))
                assert surf.loss[i, j] == pytest.approx(expected, rel=1e-5, abs=1e-6), (i, j)
    assert surf.accuracy is not None and np.isfinite(surf.accuracy).all()
    # the line through the same direction agrees with the plane's middle column
    line = landscape.line(lm, (X, y), direction=surf.d1, steps=3, span=0.5)
    col = int(np.argmin(np.abs(surf.b)))
    if abs(surf.b[col]) < 1e-12:
        np.testing.assert_allclose(line.loss, surf.loss[:, col], rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_top3_hessian_eigenvalues_match_dense_reference(tiny_folders, family):
    lm = load_model(tiny_folders[family])
    lm.module.double()
    X, y, ref = make_data(family)
    if X.is_floating_point():
        X = X.double()
        ref = {**ref, "pixel_values": X}
    op = curvature.HessianOperator(lm, None, (X, y))
    got = curvature.lanczos(op, 3, tol=1e-10, max_iters=op.size, seed=0).eigenvalues

    names = [n for n, _ in lm.module.named_parameters()]
    shapes = [p.shape for _, p in lm.module.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for _, p in lm.module.named_parameters()])
    module = copy.deepcopy(lm.module).eval()

    def f(flat):
        parts = torch.split(flat, [s.numel() for s in shapes])
        return _reference_loss(module, {n: t.reshape(s) for n, t, s in zip(names, parts, shapes)}, ref)

    H = torch.autograd.functional.hessian(f, flat0)
    want = np.sort(np.linalg.eigvalsh(((H + H.T) / 2).numpy()))[::-1][:3]
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(np.sort(got)[::-1], want, atol=1e-4 * scale, rtol=0)


def test_hessian_and_pca_axes_trace_and_density(tiny_folders):
    lm = load_model(tiny_folders["bert-mlm"])
    X, y, _ = make_data("bert-mlm")
    surf = landscape.plane(lm, (X, y), axes="hessian", resolution=3, span=0.1)
    lam1 = surf.directions["eigenvalues"][0]
    op = curvature.HessianOperator(lm, None, (X, y))
    v = op.to_vector(surf.d1)
    assert float(v.norm()) == pytest.approx(1.0, abs=1e-5)
    assert float(v @ op.matvec(v)) == pytest.approx(lam1, rel=1e-3)  # the axis is the top eigenvector
    res = curvature.analyze(lm, (X, y), top_k=2, trace=True, trace_matvecs=30, density=True, density_probes=1, density_iters=20)
    assert res["eigenvalues"]["values"][0] == pytest.approx(lam1, rel=1e-3)
    assert np.isfinite(res["trace"]["estimate"]) and len(res["density"]["grid"]) > 10

    centre = lm.state()
    g = torch.Generator().manual_seed(0)
    trajectory = [{n: p + 0.01 * k * torch.randn(p.shape, generator=g) for n, p in centre.items()} for k in range(4)]
    pca = landscape.plane(lm, (X, y), axes="pca", trajectory=trajectory, resolution=3)
    assert pca.trajectory.shape == (4, 2) and np.isfinite(pca.loss).all()
