import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from analysis import landscape as L
from analysis import zoo

SPECS = {
    "mlp": {"kind": "mlp", "in": 64, "hidden": [24, 16], "out": 10},
    "mlp-bn": {"kind": "mlp", "in": 64, "hidden": [16], "out": 10, "batchnorm": True, "activation": "tanh"},
    "cnn-bn": {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4, 6], "out": 10, "batchnorm": True},
}


def _model(spec, seed=0):
    torch.manual_seed(seed)
    m = zoo.build(spec).double()
    for name, buf in m.named_buffers():
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)  # running stats that are not the defaults
    return m.eval()


def _direct(model, a, b, d1, d2, X, y):
    """Build a fresh model at theta + a d1 + b d2 and evaluate it the plain way."""
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in fresh.named_parameters():
            p.copy_(dict(model.named_parameters())[n] + a * d1[n] + b * d2[n])
        out = fresh.eval()(X)
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).double().mean().item()


@pytest.fixture(scope="module")
def xy():
    from analysis import data

    X, y = data.load("digits", "all")
    return X[:300].double(), y[:300]


@pytest.mark.parametrize("name", list(SPECS))
def test_grid_points_equal_direct_evaluation(name, xy):
    X, y = xy
    model = _model(SPECS[name])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    surf = L.plane(model, (X, y), resolution=(9, 7), span=((-0.6, 0.9), (-0.4, 0.8)), seed=3)
    assert surf.computed.all() and surf.loss.shape == (9, 7)
    for i, j in [(0, 0), (8, 6), (3, 5), (7, 1), (4, 2)]:
        loss, acc = _direct(model, surf.a[i], surf.b[j], surf.d1, surf.d2, X, y)
        assert surf.loss[i, j] == pytest.approx(loss, rel=1e-10), (i, j)
        assert surf.accuracy[i, j] == pytest.approx(acc, abs=1e-12)
    # the caller's model is untouched: weights, buffers and mode
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the fast and the generic evaluator agree
    if name.startswith("mlp"):
        slow = L.evaluate_points(model, (X, y), [surf.d1, surf.d2], np.array([[surf.a[2], surf.b[3]]]), fast=False)
        assert slow[0][0] == pytest.approx(surf.loss[2, 3], rel=1e-10)


def test_transformer_plane_points_are_exact():
    from analysis import data

    spec = {"kind": "transformer", "p": 7, "d_model": 8, "heads": 2, "layers": 1, "d_mlp": 16}
    model = _model(spec)
    X, y = data.load("modular-addition", "all", p=7)
    surf = L.plane(model, (X, y), resolution=5, span=0.5)
    for i, j in [(0, 4), (3, 1)]:
        loss, _ = _direct(model, surf.a[i], surf.b[j], surf.d1, surf.d2, X, y)
        assert surf.loss[i, j] == pytest.approx(loss, rel=1e-10)


def test_filter_normalised_directions_have_weight_norms():
    model = _model(SPECS["cnn-bn"])
    params = dict(model.named_parameters())
    d = L.random_direction(params, seed=0)
    for name, w in params.items():
        if w.dim() >= 2:
            torch.testing.assert_close(d[name].flatten(1).norm(dim=1), w.flatten(1).norm(dim=1), rtol=1e-9, atol=0)
        else:
            assert torch.count_nonzero(d[name]) == 0, name  # biases and BN parameters stay put
    d_bias = L.random_direction(params, seed=0, include_bias=True)
    assert d_bias["conv0.bias"].norm() == pytest.approx(params["conv0.bias"].norm().item(), rel=1e-9)
    assert torch.equal(d_bias["conv1.weight"], d["conv1.weight"])
    assert not torch.equal(L.random_direction(params, seed=1)["conv0.weight"], d["conv0.weight"])


def test_coarse_to_fine_events_and_resume(xy):
    X, y = xy
    model = _model(SPECS["mlp"])
    events = []
    surf = L.plane(model, (X, y), resolution=21, span=0.5, on_progress=events.append, batch_size=8)
    assert events[0]["type"] == "start" and events[0]["total"] == 441
    pts = [(p["i"], p["j"], e["level"]) for e in events if e["type"] == "points" for p in e["points"]]
    assert len(pts) == 441 and len({(i, j) for i, j, _ in pts}) == 441
    levels = [lv for _, _, lv in pts]
    assert levels == sorted(levels)  # a level is finished before the next starts
    coarse = {(i, j) for i, j, lv in pts if lv == 0}
    stride = L.grid_levels(21)[0]
    assert stride == 4
    expected = {(i, j) for i in range(0, 21, stride) for j in range(0, 21, stride)}
    assert coarse == expected and len(coarse) <= 0.1 * 441
    for e in events[1:]:
        for p in e["points"]:
            assert p["loss"] == pytest.approx(surf.loss[p["i"], p["j"]])
            assert p["a"] == surf.a[p["i"]] and p["b"] == surf.b[p["j"]]
    # resume from a partial result: only the missing points are computed, values match
    partial = surf.to_dict()
    rng = np.random.default_rng(0)
    keep = rng.random((21, 21)) < 0.6
    partial["computed"] = keep.tolist()
    partial["loss"] = [[v if k else None for v, k in zip(row, krow)] for row, krow in zip(partial["loss"], keep)]
    resumed_events = []
    again = L.plane(model, (X, y), resolution=21, span=0.5, resume=partial, on_progress=resumed_events.append)
    redone = sum(len(e["points"]) for e in resumed_events if e["type"] == "points")
    assert redone == int((~keep).sum())
    np.testing.assert_allclose(again.loss, surf.loss, rtol=1e-12)


def _planar_trajectory(model):
    """``(centre, eight states)`` on a curved path in a random plane through the centre, ending at it."""
    centre = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(0)
    u = {n: torch.randn(p.shape, generator=g, dtype=p.dtype) if p.dim() > 1 else torch.zeros_like(p) for n, p in centre.items()}
    v = {n: torch.randn(p.shape, generator=g, dtype=p.dtype) if p.dim() > 1 else torch.zeros_like(p) for n, p in centre.items()}
    s = np.linspace(1.0, 0.0, 8)
    r = np.sin(np.linspace(0, np.pi, 8)) * 0.3  # ends at the centre (s = r = 0)
    return centre, [{n: centre[n] + 0.05 * (si * u[n] + ri * v[n]) for n in centre} for si, ri in zip(s, r)]


def test_pca_axes_project_the_trajectory(xy):
    X, y = xy
    model = _model(SPECS["mlp"])
    centre, traj = _planar_trajectory(model)
    surf = L.plane(model, (X, y), axes="pca", trajectory=traj, trajectory_steps=list(range(0, 80, 10)), resolution=5)
    assert surf.trajectory.shape == (8, 2) and surf.trajectory_steps[-1] == 70
    np.testing.assert_allclose(surf.trajectory[-1], [0, 0], atol=1e-10)  # the centre is the last state
    # the trajectory lies in a plane, so the projection preserves every distance to the centre
    for k, st in enumerate(traj):
        dist = torch.sqrt(sum(((st[n] - centre[n]) ** 2).sum() for n in centre)).item()
        assert np.linalg.norm(surf.trajectory[k]) == pytest.approx(dist, rel=1e-8)
    assert sum(surf.directions["explained_variance_ratio"]) == pytest.approx(1.0, abs=1e-8)
    assert np.abs(surf.a).max() >= np.abs(surf.trajectory[:, 0]).max()  # default span covers the path
    assert len(surf.trajectory_loss) == 8


def test_hessian_axes_are_eigenvectors(xy):
    from analysis import curvature

    X, y = xy
    model = _model(SPECS["mlp"])
    surf = L.plane(model, (X[:100], y[:100]), axes="hessian", resolution=3, span=0.1)
    op = curvature.HessianOperator(model, None, (X[:100], y[:100]))
    v = op.to_vector(surf.d1)
    lam = surf.directions["eigenvalues"][0]
    assert v.norm().item() == pytest.approx(1.0, rel=1e-8)
    torch.testing.assert_close(op.matvec(v), lam * v, rtol=1e-3, atol=1e-3 * abs(lam))


def test_line_between_checkpoints_and_along_direction(xy):
    X, y = xy
    a, b = _model(SPECS["mlp-bn"], 0), _model(SPECS["mlp-bn"], 1)
    res = L.line(a, (X, y), end=b, steps=5)
    for model, t in ((a, 0), (b, -1)):
        with torch.no_grad():
            ref = F.cross_entropy(model(X), y).item()
        assert res.loss[t] == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(L.line(a, (X, y), end=b, steps=3, span=1.0).t, [-0.5, 0.5, 1.5])
    along = L.line(a, (X, y), steps=5, span=(-1, 1))
    with torch.no_grad():
        assert along.loss[2] == pytest.approx(F.cross_entropy(a(X), y).item(), rel=1e-10)


def test_a_line_along_the_top_hessian_eigenvector_curves_by_its_eigenvalue(xy):
    # known answer: along a unit eigenvector v the loss's second derivative at the centre is v'Hv = lambda_max
    # (a smooth network: across a ReLU's kinks a finite difference is not the Hessian's)
    X, y = xy
    model = _model({**SPECS["mlp"], "activation": "tanh"})
    h = 1e-3
    line = L.line(model, (X[:100], y[:100]), axes="hessian", steps=3, span=h)
    lam = line.directions["eigenvalue"]
    assert line.directions["norm"] == pytest.approx(1.0, rel=1e-8) and lam > 0
    assert (line.loss[0] - 2 * line.loss[1] + line.loss[2]) / h**2 == pytest.approx(lam, rel=1e-4)
    # the same direction as the Hessian plane's first axis: the line is that plane's b = 0 row
    surf = L.plane(model, (X[:100], y[:100]), axes="hessian", resolution=(5, 3), span=((-0.2, 0.2), (-0.1, 0.1)))
    row = L.line(model, (X[:100], y[:100]), axes="hessian", steps=5, span=0.2)
    np.testing.assert_allclose(row.loss, surf.loss[:, 1], rtol=1e-9)


def test_a_line_along_the_first_principal_direction_of_a_trajectory(xy):
    X, y = xy
    model = _model(SPECS["mlp"])
    _, traj = _planar_trajectory(model)
    line = L.line(model, (X, y), axes="pca", trajectory=traj, steps=5)
    along = np.abs(line.directions["trajectory_t"])
    assert len(along) == 8 and along[-1] == pytest.approx(0.0, abs=1e-10)  # the centre is the last state
    assert line.t[-1] == pytest.approx(1.25 * along.max()) and line.t[0] == pytest.approx(-line.t[-1])  # covers the path
    # the first axis of the PCA plane: the line is that plane's b = 0 row
    surf = L.plane(model, (X, y), axes="pca", trajectory=traj, resolution=(5, 3), span=((-0.04, 0.04), (-0.01, 0.01)))
    row = L.line(model, (X, y), axes="pca", trajectory=traj, steps=5, span=0.04)
    np.testing.assert_allclose(row.loss, surf.loss[:, 1], rtol=1e-9)
    assert row.directions["explained_variance_ratio"] == pytest.approx(surf.directions["explained_variance_ratio"][0])
    with pytest.raises(ValueError, match="trajectory"):
        L.line(model, (X, y), axes="pca")
    with pytest.raises(ValueError, match="axes"):
        L.line(model, (X, y), axes="three_models")


def test_batchnorm_recompute(xy):
    X, y = xy
    model = _model(SPECS["cnn-bn"])
    keep = L.evaluate_points(model, (X, y), [], np.zeros((1, 0)))[0][0]
    rec = L.evaluate_points(model, (X, y), [], np.zeros((1, 0)), batchnorm="recompute")[0][0]
    ref_model = copy.deepcopy(model)
    for m in ref_model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        ref_model.train()(X)
        ref = F.cross_entropy(ref_model.eval()(X), y).item()
    assert rec == pytest.approx(ref, rel=1e-10) and rec != pytest.approx(keep, rel=1e-3)


def test_bad_arguments(xy):
    X, y = xy
    model = _model(SPECS["mlp"])
    with pytest.raises(ValueError, match="axes"):
        L.plane(model, (X, y), axes="diagonal")
    with pytest.raises(ValueError, match="trajectory"):
        L.plane(model, (X, y), axes="pca")
    with pytest.raises(ValueError, match="resolution"):
        L.plane(model, (X, y), resolution=100000)
    with pytest.raises(ValueError, match="span"):
        L.plane(model, (X, y), span=-1)


def test_point_parallel_plane_equals_serial_and_restores_threads():
    """With several torch threads the MLP fast path splits batches between points;
    the grid must be the same as the serial one, and the thread count restored."""
    from analysis import data, landscape, zoo

    X, y = data.load("digits", "train")
    model = zoo.build({"kind": "mlp", "in": 64, "hidden": [16], "out": 10})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        parallel = landscape.plane(model, (X[:300], y[:300]), resolution=9, seed=3, threads=2)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        serial = landscape.plane(model, (X[:300], y[:300]), resolution=9, seed=3)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(parallel.loss, serial.loss) and np.array_equal(parallel.accuracy, serial.accuracy)
