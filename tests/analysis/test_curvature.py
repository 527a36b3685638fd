import numpy as np
import pytest
import torch
from torch.nn import functional as F

from analysis import curvature as C
from analysis import zoo


def _linear_regression(n=60, d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.3, 2.0, d, dtype=torch.float64)
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    return model, X, y


def test_closed_form_linear_regression_hessian():
    """MSE of a linear model: H = 2/n X^T X exactly."""
    model, X, y = _linear_regression()
    n, d = X.shape
    H = 2.0 / n * X.T @ X
    exact = np.sort(np.linalg.eigvalsh(H.numpy()))[::-1]
    op = C.HessianOperator(model, F.mse_loss, (X, y))
    res = C.lanczos(op, 4, tol=1e-12, seed=1)
    np.testing.assert_allclose(res.eigenvalues, exact[:4], rtol=1e-5)
    assert res.converged and op.num_matvecs == res.num_matvecs
    # eigenvectors really are eigenvectors
    v = res.eigenvectors[:, 0]
    np.testing.assert_allclose((H @ v).numpy(), (exact[0] * v).numpy(), rtol=1e-5, atol=1e-8)
    # the operator reproduces H column by column
    torch.testing.assert_close(C.dense_matrix(op), H, rtol=1e-12, atol=1e-12)
    # trace: Hutch++ with a sketch as wide as the dimension is exact
    tr = C.hutchpp(op, 3 * d, seed=0)
    assert tr.estimate == pytest.approx(float(torch.trace(H)), rel=1e-5)
    # SLQ with as many Lanczos steps as the dimension has the exact eigenvalues as nodes
    sd = C.spectral_density(op, num_probes=1, num_iters=d, seed=0)
    np.testing.assert_allclose(np.sort(sd.nodes[0])[::-1], exact, rtol=1e-5)


def test_closed_form_quadratic_dense_operator():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    evals = np.concatenate([[50.0, 20.0, 10.0, 5.0, -3.0], rng.uniform(-1, 1, 35)])
    A = torch.as_tensor(Q @ np.diag(evals) @ Q.T)
    op = C.DenseOperator(A)
    res = C.lanczos(op, 4, tol=1e-12)
    np.testing.assert_allclose(res.eigenvalues, [50, 20, 10, 5], rtol=1e-5)
    res_lm = C.lanczos(C.DenseOperator(A), 5, which="LM", tol=1e-12)
    np.testing.assert_allclose(sorted(np.abs(res_lm.eigenvalues)), [3, 5, 10, 20, 50], rtol=1e-5)
    res_sa = C.lanczos(C.DenseOperator(A), 1, which="SA", tol=1e-12)
    np.testing.assert_allclose(res_sa.eigenvalues, [-3], rtol=1e-5)


def test_repeated_eigenvalues_are_found():
    A = torch.diag(torch.tensor([5.0, 5.0, 5.0, 1.0, 0.5, 0.1], dtype=torch.float64))
    res = C.lanczos(C.DenseOperator(A), 3, tol=1e-10)
    np.testing.assert_allclose(res.eigenvalues, [5, 5, 5], rtol=1e-6)


def _dense_hessian(model, X, y):
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())

    def f(*ps):
        return F.cross_entropy(torch.func.functional_call(model, dict(zip(names, ps)), (X,)), y)

    H = torch.autograd.functional.hessian(f, params)
    sizes = [p.numel() for p in params]
    rows = [torch.cat([H[i][j].reshape(sizes[i], sizes[j]) for j in range(len(params))], 1) for i in range(len(params))]
    return torch.cat(rows, 0)


def test_lanczos_top5_matches_dense_hessian_on_small_mlp():
    torch.manual_seed(0)
    spec = {"kind": "mlp", "in": 6, "hidden": [10, 8], "out": 3, "activation": "tanh"}
    model = zoo.build(spec).double()
    X = torch.randn(80, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (80,))
    Hd = _dense_hessian(model, X, y)
    exact = np.sort(np.linalg.eigvalsh(Hd.numpy()))[::-1][:5]
    op = C.HessianOperator(model, None, (X, y))
    res = C.lanczos(op, 5, tol=1e-8, seed=0)
    np.testing.assert_allclose(res.eigenvalues, exact, rtol=1e-4)
    # fewer products than the dimension (it is not just building the matrix)
    assert res.num_matvecs < op.size
    # all three ways of multiplying agree
    v = torch.randn(op.size, dtype=torch.float64)
    ref = Hd @ v
    for kwargs in ({}, {"method": "forward_over_reverse"}, {"batch_size": 17}):
        other = C.HessianOperator(model, None, (X, y), **kwargs)
        torch.testing.assert_close(other.matvec(v), ref, rtol=1e-10, atol=1e-12)
        assert other.num_matvecs == 1
    # the caller's model is untouched (no grads, same mode)
    assert all(p.grad is None for p in model.parameters())


def test_hutchpp_beats_hutchinson_at_equal_budget():
    """Decaying spectrum: Hutch++ error at 60 products is well below Hutchinson's."""
    rng = np.random.default_rng(1)
    n = 300
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    evals = 1.0 / np.arange(1, n + 1) ** 1.5
    A = torch.as_tensor(Q @ np.diag(evals) @ Q.T)
    exact = evals.sum()
    err_h, err_pp, covered = [], [], 0
    for seed in range(20):
        h = C.hutchinson(C.DenseOperator(A), 60, seed=seed)
        pp = C.hutchpp(C.DenseOperator(A), 60, seed=seed)
        assert h.num_matvecs == 60 and pp.num_matvecs == 60
        err_h.append(abs(h.estimate - exact))
        err_pp.append(abs(pp.estimate - exact))
        covered += abs(h.estimate - exact) <= 3 * h.stderr
    ratio = np.mean(err_pp) / np.mean(err_h)
    assert ratio <= 0.5, ratio
    assert covered >= 17  # the standard error is a sensible error bar
    # deterministic per seed
    assert C.hutchpp(C.DenseOperator(A), 60, seed=3).estimate == C.hutchpp(C.DenseOperator(A), 60, seed=3).estimate


def test_spectral_density_finds_clusters():
    rng = np.random.default_rng(2)
    n = 200
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    evals = np.concatenate([rng.normal(0.0, 0.05, 150), rng.normal(5.0, 0.05, 50)])
    op = C.DenseOperator(torch.as_tensor(Q @ np.diag(evals) @ Q.T))
    sd = C.spectral_density(op, num_probes=8, num_iters=40, sigma=0.2, seed=0)
    assert np.trapezoid(sd.density, sd.grid) == pytest.approx(1.0, abs=1e-6)
    near0 = np.trapezoid(np.where(np.abs(sd.grid) < 1, sd.density, 0), sd.grid)
    near5 = np.trapezoid(np.where(np.abs(sd.grid - 5) < 1, sd.density, 0), sd.grid)
    assert near0 == pytest.approx(0.75, abs=0.1) and near5 == pytest.approx(0.25, abs=0.1)
    assert sd.num_matvecs == 8 * 40
    again = C.spectral_density(op, num_probes=8, num_iters=40, sigma=0.2, seed=0)
    np.testing.assert_array_equal(sd.density, again.density)


def test_analyze_returns_json_ready_dict(small_models, digits):
    import json

    (train_data, _) = digits
    X, y = train_data[0][:300], train_data[1][:300]
    out = C.analyze(small_models[0].model, (X, y), top_k=3, trace=True, trace_matvecs=12, density=True, density_iters=10, density_probes=1)
    json.dumps(out)
    values = out["eigenvalues"]["values"]
    assert len(values) == 3 and values[0] >= values[1] and out["eigenvalues"]["num_matvecs"] < out["num_matvecs"]
    assert out["trace"]["num_matvecs"] == 12 and len(out["density"]["grid"]) == len(out["density"]["density"])


def test_load_weights_gives_the_products_of_a_fresh_operator_after_training_moved_the_model():
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)).double()
    X = torch.randn(32, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (32,))
    op = C.HessianOperator(model, None, (X, y))
    v = torch.randn(op.size, dtype=torch.float64)
    before = op.matvec(v)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):  # moves the weights and BatchNorm's running statistics in place
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    op.load_weights(model)
    fresh = C.HessianOperator(model, None, (X, y))
    torch.testing.assert_close(op.matvec(v), fresh.matvec(v), rtol=1e-12, atol=1e-12)
    assert (op.matvec(v) - before).abs().max() > 1e-3  # it did change


def test_density_probes_run_apart_give_the_same_density():
    """Probe p depends on (seed, p) only: probes in any order, on fresh operators, combine to the same density."""
    rng = np.random.default_rng(5)
    n = 40
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = torch.as_tensor(Q @ np.diag(np.linspace(-1.0, 3.0, n)) @ Q.T)
    whole = C.spectral_density(C.DenseOperator(A), num_probes=5, num_iters=12, seed=7)
    probes = {p: C.density_probe(C.DenseOperator(A), probe=p, num_iters=12, seed=7) for p in (4, 2, 0, 3, 1)}
    apart = C.density_from_probes([probes[p][0] for p in range(5)], [probes[p][1] for p in range(5)], num_matvecs=60)
    for key in ("grid", "density", "nodes", "weights"):
        np.testing.assert_array_equal(getattr(apart, key), getattr(whole, key))
    assert apart.sigma == whole.sigma and whole.num_matvecs == apart.num_matvecs == 60
    fewer = C.spectral_density(C.DenseOperator(A), num_probes=3, num_iters=12, seed=7)
    np.testing.assert_array_equal(fewer.nodes, whole.nodes[:3])  # a probe does not depend on how many there are
    assert not np.array_equal(whole.nodes[0], whole.nodes[1])  # but the probes differ


def test_chunked_products_of_a_language_model_weight_chunks_by_label_tokens():
    # a causal LM's loss is the mean over label tokens, not rows: with padding (-100) spread unevenly over the
    # rows, chunks weighted by rows gave another Hessian than the full batch (top eigenvalue 23.3 vs 12.8)
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    from analysis.sources.base import IGNORE_INDEX, LoadedModel, causal_lm_accuracy, causal_lm_loss

    class Logits(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, ids):
            return self.lm(ids.clamp(min=0)).logits

    logging.set_verbosity_error()
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=11, n_positions=8, n_embd=8, n_layer=1, n_head=2, attn_implementation="eager"))
    model = LoadedModel(Logits(lm).double().eval(), causal_lm_loss, causal_lm_accuracy, "tokens")
    ids = torch.randint(0, 11, (6, 8), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[:2, 2:] = IGNORE_INDEX  # the first chunk of two rows holds 2 label tokens, the others 14 each
    whole = C.HessianOperator(model, None, (ids, labels))
    chunked = C.HessianOperator(model, None, (ids, labels), batch_size=2)
    v = torch.randn(whole.size, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(chunked.matvec(v), whole.matvec(v), rtol=1e-9, atol=1e-12)
    assert torch.allclose(chunked.gradient(), whole.gradient(), rtol=1e-9, atol=1e-12)
    assert chunked.loss() == pytest.approx(whole.loss(), rel=1e-12)
    # rows are the weights where every row counts alike
    plain = C.HessianOperator(model, None, (ids, ids), batch_size=4)
    assert plain.loss() == pytest.approx(C.HessianOperator(model, None, (ids, ids)).loss(), rel=1e-12)
