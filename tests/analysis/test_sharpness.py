"""Sharpness tracking: known answers on a quadratic, the edge of stability on a small MLP."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis import curvature, data, sharpness, train, warm_start

LAMBDAS = torch.tensor([5.0, 3.0, 2.5, 1.0, 0.7, 0.5, 0.2, 0.1], dtype=torch.float64)


def quadratic_problem():
    """Linear least squares whose MSE Hessian (2/N) X^T X is exactly Q diag(LAMBDAS) Q^T."""
    d = len(LAMBDAS)
    gen = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    X = math.sqrt(d / 2) * torch.diag(LAMBDAS.sqrt()) @ Q.T
    w_star = torch.randn(d, 1, generator=gen, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, d, generator=gen, dtype=torch.float64))
    return model, (X, X @ w_star)


def gradient_descent(model, data, lr, steps, tracker):
    X, y = data
    losses = []
    for step in range(steps + 1):
        tracker(step, model)
        loss = F.mse_loss(model(X), y)
        losses.append(float(loss.detach()))
        if step == steps:
            break
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return losses


@pytest.mark.parametrize("eta_times_lambda, diverges", [(2.05, True), (1.95, False), (1.5, False)])
def test_quadratic_gd_diverges_past_two_over_eta_and_tracker_reports_lambda_max(eta_times_lambda, diverges):
    lambda_max = float(LAMBDAS.max())
    lr = eta_times_lambda / lambda_max
    model, data = quadratic_problem()
    tracker = sharpness.SharpnessTracker(data, lr=lr, every=10, batch_size=None, tol=1e-10, max_iters=len(LAMBDAS))
    losses = gradient_descent(model, data, lr, 200, tracker)
    assert (losses[-1] > 1e3 * losses[0]) is diverges
    assert (losses[-1] < 1e-6 * losses[0]) is (not diverges)
    assert len(tracker.records) == 21
    for record in tracker.records:
        assert record["sharpness"] == pytest.approx(lambda_max, rel=1e-6)
    summary = tracker.summary()
    assert summary["threshold"] == pytest.approx(2 / lr)
    assert summary["progressive_sharpening"] == pytest.approx(1.0, rel=1e-6)
    assert summary["frac_above_2_over_eta"] == (1.0 if diverges else 0.0)
    # 0.9 * 2/eta <= lambda_max  <=>  eta * lambda_max >= 1.8
    assert summary["eos_step"] == (0 if eta_times_lambda >= 1.8 else None)


def weighted_quadratic(curvatures):
    """A linear model whose MSE Hessian is Q diag(curvatures) Q^T, with ``curvatures`` read at each loss:
    changing it between measurements moves the spectrum under a fixed model and batch."""
    d = len(LAMBDAS)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    X = math.sqrt(d / 2) * Q.T  # row i is sqrt(d/2) q_i, so mean_i c_i (x_i . w)^2 has Hessian Q diag(c) Q^T
    model = nn.Linear(d, 1, bias=False).double()

    def loss_fn(out, y):
        return (curvatures.reshape(-1, 1) * (out - y) ** 2).mean()

    return model, (X, torch.zeros(d, 1, dtype=torch.float64)), loss_fn, Q


def test_warm_tracker_follows_the_top_eigenvalue_when_the_top_two_swap():
    curvatures = LAMBDAS.clone()
    model, data, loss_fn, Q = weighted_quadratic(curvatures)
    tracker = sharpness.SharpnessTracker(data, lr=0.1, every=1, batch_size=None, loss_fn=loss_fn, warm_start=True,
                                         tol=1e-8, max_iters=len(LAMBDAS))
    assert tracker.measure(0, model)["sharpness"] == pytest.approx(5.0, rel=1e-8)
    curvatures[0], curvatures[1] = 3.0, 5.0  # the old top direction q_0 is now the second one
    record = tracker.measure(1, model)
    assert record["sharpness"] == pytest.approx(5.0, rel=1e-8)
    assert record["matvecs"] == 3  # Rayleigh-Ritz on the previous top three Ritz vectors: exact, no expansion
    # the trap it avoids: Lanczos from the old top vector alone stops at once on the old branch, now 3.0
    op = curvature.HessianOperator(model, loss_fn, data)
    trapped = sharpness.top_eigenpair(op, Q[:, 0].clone(), tol=1e-8, max_iters=len(LAMBDAS))
    assert trapped["converged"] and trapped["eigenvalue"] == pytest.approx(3.0, rel=1e-8)


def swapped_tracker_record(new_curvatures, tracker_out=None):
    """The tracker's record after the weighted quadratic's spectrum changes from LAMBDAS to ``new_curvatures``."""
    curvatures = LAMBDAS.clone()
    model, data, loss_fn, _ = weighted_quadratic(curvatures)
    tracker = sharpness.SharpnessTracker(data, lr=0.1, every=1, batch_size=None, loss_fn=loss_fn, tol=1e-8,
                                         max_iters=len(LAMBDAS))
    tracker.measure(0, model)
    curvatures.copy_(torch.tensor(new_curvatures, dtype=torch.float64))
    if tracker_out is not None:
        tracker_out.append(tracker)
    return tracker.measure(1, model)


def test_warm_start_retests_only_the_previous_vectors_that_could_have_overtaken_the_top():
    # the top direction unchanged (only the bulk moved): its product and the runner-up's confirm it
    trackers = []
    record = swapped_tracker_record([5.0, 3.0, 2.5, 1.5, 0.9, 0.5, 0.2, 0.1], trackers)
    assert record["sharpness"] == pytest.approx(5.0, rel=1e-8) and record["matvecs"] == 2
    # the old third vector, not re-tested, is kept for the next measurement with its value
    assert list(trackers[0]._previous["sharpness"]["values"]) == pytest.approx([5.0, 3.0, 2.5], rel=1e-8)
    # the first and third swap: u_1's Rayleigh quotient drops by 2.5, so by Weyl both the old second (2 below)
    # and third (2.5 below) may now be on top: all three are re-tested and Rayleigh-Ritz is exact
    record = swapped_tracker_record([2.5, 3.0, 5.0, 1.0, 0.7, 0.5, 0.2, 0.1])
    assert record["sharpness"] == pytest.approx(5.0, rel=1e-8) and record["matvecs"] == 3
    # a small change of the top (drift 0.3) re-tests nothing 2 or more below it but the runner-up
    record = swapped_tracker_record([4.7, 3.0, 2.5, 1.0, 0.7, 0.5, 0.2, 0.1])
    assert record["sharpness"] == pytest.approx(4.7, rel=1e-8) and record["matvecs"] == 2


def test_warm_top_eigenpair_finds_a_top_vector_that_rotated_out_of_the_previous_ones():
    d = len(LAMBDAS)
    before = curvature.DenseOperator(torch.diag(LAMBDAS))
    cold = sharpness.top_eigenpair(before, torch.ones(d, dtype=torch.float64), tol=1e-10, max_iters=d, keep=3)
    previous = warm_start.next_warm_start(cold, keep=3)
    assert list(previous["values"]) == pytest.approx([5.0, 3.0, 2.5])
    # rotate the top direction e_0 by 40 degrees towards e_5, outside the three kept vectors; the spectrum stays
    c, s = math.cos(math.radians(40)), math.sin(math.radians(40))
    R = torch.eye(d, dtype=torch.float64)
    R[0, 0], R[0, 5], R[5, 0], R[5, 5] = c, -s, s, c
    after = curvature.DenseOperator(R @ torch.diag(LAMBDAS) @ R.T)
    top = warm_start.warm_top_eigenpair(after, previous, tol=1e-8, max_iters=d, keep=3)
    assert top["converged"] and top["eigenvalue"] == pytest.approx(5.0, rel=1e-8)
    # drift: e_0's Rayleigh quotient fell to 5c^2 + 0.5s^2 and its residual grew: everything was re-tested
    assert top["drift"] >= 5.0 - (5 * c * c + 0.5 * s * s) and top["retested"] == [0, 1, 2]
    assert abs(float(top["ritz_vectors"][:, 0] @ R[:, 0])) == pytest.approx(1.0, rel=1e-6)


def test_warm_start_sees_the_runner_up_rise_past_an_unchanged_top_vector():
    """The drift bound's blind spot (analysis/warm_start.py): a change that leaves the top vector an eigenvector
    with the same value is invisible to its one product, so the old second vector is re-tested always."""
    record = swapped_tracker_record([5.0, 6.0, 2.5, 1.0, 0.7, 0.5, 0.2, 0.1])
    assert record["matvecs"] == 2 and record["sharpness"] == pytest.approx(6.0, rel=1e-8)


def test_block_top_eigenpair_expands_past_a_stale_block():
    H = torch.diag(LAMBDAS)
    stale = torch.eye(len(LAMBDAS), dtype=torch.float64)[:, 3:5] + 0.1  # mostly the 4th and 5th directions
    top = sharpness.block_top_eigenpair(curvature.DenseOperator(H), stale, tol=1e-8, max_iters=len(LAMBDAS))
    assert top["converged"] and top["eigenvalue"] == pytest.approx(5.0, rel=1e-8)
    assert top["num_matvecs"] <= len(LAMBDAS)
    assert abs(float(top["ritz_vectors"][0, 0])) == pytest.approx(1.0, rel=1e-6)


def test_history_records_the_top_ritz_value_after_every_product():
    """What the benchmark scores against a reference: one entry per product, the last one the result."""
    op = curvature.DenseOperator(torch.diag(LAMBDAS))
    v0 = torch.ones(len(LAMBDAS), dtype=torch.float64)
    history = []
    top = sharpness.top_eigenpair(op, v0, tol=0.0, max_iters=len(LAMBDAS), history=history)
    assert [k for k, _, _ in history] == list(range(1, len(LAMBDAS) + 1))
    assert history[0][1] == pytest.approx(float(LAMBDAS.mean()))  # the Rayleigh quotient of the all-ones start
    assert history[-1][1] == top["eigenvalue"] == pytest.approx(5.0, rel=1e-10) and history[-1][2] < 1e-8
    assert all(a[1] <= b[1] + 1e-12 for a, b in zip(history, history[1:]))  # Ritz values only rise
    block, history = torch.eye(len(LAMBDAS), dtype=torch.float64)[:, 1:3] + 0.1, []
    top = sharpness.block_top_eigenpair(op, block, tol=0.0, max_iters=5, history=history)
    assert [k for k, _, _ in history] == [2, 3, 4, 5]  # the block's two products come first
    Q, _ = torch.linalg.qr(block)
    assert history[0][1] == pytest.approx(float(torch.linalg.eigvalsh(Q.T @ torch.diag(LAMBDAS) @ Q).max()), rel=1e-10)
    assert history[-1][1] == top["eigenvalue"] and all(a[1] <= b[1] + 1e-12 for a, b in zip(history, history[1:]))


def test_warm_tracker_matches_cold_lanczos_on_an_mlp_trained_by_full_batch_gd():
    """The edge-of-stability run (eigenvalues cross there), measured three ways at every 20th step."""
    X, y = sharpness_data()
    kwargs = dict(lr=1.0, every=20, batch_size=None)
    warm = sharpness.SharpnessTracker((X, y), **kwargs)  # warm starts are the default
    cold = sharpness.SharpnessTracker((X, y), warm_start=False, **kwargs)
    assert warm.warm_start and warm.tol == sharpness.DEFAULT_TOL == 3e-3
    references = []

    def measure(step, model, optimizer):
        if step % 20 == 0:
            warm(step, model)
            cold(step, model)
            op = curvature.HessianOperator(model, None, (X, y))
            references.append(curvature.lanczos(op, 1, tol=1e-10, max_iters=200, seed=12345).eigenvalues[0])

    train.train(sharpness.EOS_DEMO_SPEC, (X, y), optimizer="sgd", lr=1.0, momentum=0.0, batch_size=len(X), steps=400,
                seed=0, eval_every=400, on_step=measure)
    assert len(references) == 21
    for w, c, ref in zip(warm.records, cold.records, references):
        assert abs(w["sharpness"] - ref) <= 1e-3 * ref, (w["step"], w["sharpness"], ref)
        assert abs(w["sharpness"] - c["sharpness"]) <= 2e-3 * ref, (w["step"], w["sharpness"], c["sharpness"])
    assert sum(r["matvecs"] for r in warm.records) < sum(r["matvecs"] for r in cold.records)


def sharpness_data():
    X, y = data.load("digits", "train")
    n = sharpness.EOS_DEMO_EXAMPLES
    return X[:n], F.one_hot(y[:n], 10).float()


def test_lanczos_rejects_a_bad_start_vector():
    op = curvature.DenseOperator(torch.diag(LAMBDAS))
    with pytest.raises(ValueError, match="v0"):
        curvature.lanczos(op, 1, v0=torch.zeros(len(LAMBDAS), dtype=torch.float64))


def test_thresholds_follow_cohen_et_al():
    assert sharpness.stability_threshold("sgd", 0.01) == pytest.approx(200.0)
    assert sharpness.stability_threshold("sgd", 0.01, momentum=0.9) == pytest.approx(380.0)
    assert sharpness.stability_threshold("adam", 0.001) == pytest.approx(38_000.0)
    assert sharpness.stability_threshold("adamw", 0.01, beta1=0.5) == pytest.approx(600.0)


def test_preconditioner_reproduces_torchs_adam_step_and_preconditioned_eigenvalues():
    model, (X, y) = quadratic_problem()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, eps=1e-8)
    for _ in range(3):
        before = model.weight.detach().clone()
        opt.zero_grad()
        F.mse_loss(model(X), y).backward()
        opt.step()
    diag_p = sharpness.adam_preconditioner(model, opt, ["weight"])
    exp_avg = opt.state[model.weight]["exp_avg"].reshape(-1)
    # Adam's step is w -= eta * P^-1 m with P = (1 - beta1^t)(sqrt(v_hat) + eps)
    torch.testing.assert_close((model.weight.detach() - before).reshape(-1), -0.01 * exp_avg / diag_p, rtol=1e-10, atol=0)

    H = torch.diag(LAMBDAS)
    pre = sharpness.PreconditionedOperator(curvature.DenseOperator(H), diag_p)
    expected = torch.linalg.eigvals(torch.diag(1 / diag_p) @ H).real.max()
    top = curvature.lanczos(pre, 1, tol=1e-12, max_iters=len(LAMBDAS)).eigenvalues[0]
    assert top == pytest.approx(float(expected), rel=1e-9)


def test_adam_tracker_records_preconditioned_sharpness_against_38_over_eta():
    model, data = quadratic_problem()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    tracker = sharpness.SharpnessTracker(data, lr=0.01, optimizer="adam", every=1, batch_size=None, max_iters=len(LAMBDAS))
    assert tracker.measure(0, model, opt)["preconditioned_sharpness"] is None  # no second moments yet
    opt.zero_grad()
    F.mse_loss(model(data[0]), data[1]).backward()
    opt.step()
    record = tracker.measure(1, model, opt)
    assert record["preconditioned_sharpness"] > record["sharpness"]  # sqrt(v_hat) << 1 early on
    assert tracker.summary()["tracked"] == "preconditioned_sharpness"
    assert tracker.threshold == pytest.approx(3800.0)


def test_fixed_batch_is_a_seeded_subset():
    X = torch.arange(100.0).reshape(50, 2)
    y = torch.arange(50.0).reshape(50, 1)
    a = sharpness.SharpnessTracker((X, y), lr=0.1, batch_size=16, seed=3)
    b = sharpness.SharpnessTracker((X, y), lr=0.1, batch_size=16, seed=3)
    assert a.batch[0].shape == (16, 2) and torch.equal(a.batch[0], b.batch[0])
    assert torch.equal(a.batch[0][:, 0] / 2, a.batch[1][:, 0])  # rows stay paired
    with pytest.raises(ValueError, match="every"):
        sharpness.SharpnessTracker((X, y), lr=0.1, every=0)


def test_summary_of_hand_made_records():
    records = [{"step": s, "sharpness": v} for s, v in [(0, 1.0), (10, 1.5), (20, 1.9), (30, 2.1), (40, 1.95)]]
    summary = sharpness.summarize(records + [{"step": 50, "sharpness": None}], threshold=2.0)
    assert summary["progressive_sharpening"] == pytest.approx(1.95)
    assert summary["eos_step"] == 20  # 1.9 >= 0.9 * 2
    assert summary["frac_above_2_over_eta"] == pytest.approx(1 / 5)
    assert summary["sharpness_max"] == 2.1


def train_tracked(lr):
    tracker, result = sharpness.edge_of_stability_demo(lr)
    return tracker, [row["train_loss"] for row in result.history]


def test_small_mlp_full_batch_gd_sharpens_and_then_sits_at_the_edge_of_stability():
    small, _ = train_tracked(lr=0.25)
    large, large_losses = train_tracked(lr=1.0)
    small_sharpness = [r["sharpness"] for r in small.records]
    large_sharpness = [r["sharpness"] for r in large.records]

    # small step: progressive sharpening, far below 2/eta = 8 the whole run
    s = small.summary()
    assert s["progressive_sharpening"] > 1.2 and s["eos_step"] is None and s["frac_above_2_over_eta"] == 0.0
    assert max(small_sharpness) < 0.5 * small.threshold

    # large step: rises from well below 2/eta = 2, reaches the edge, then stays within 20% of it
    s = large.summary()
    assert large_sharpness[0] < 0.8 * large.threshold
    assert s["eos_step"] is not None and s["eos_step"] <= 200
    # the first approach overshoots (a catapult, ~1.3 x 2/eta); three measurements later it has settled
    settled = [r["sharpness"] for r in large.records if r["step"] >= s["eos_step"] + 60]
    assert len(settled) >= 10
    assert all(0.9 * large.threshold <= v <= 1.15 * large.threshold for v in settled), settled
    assert s["frac_above_2_over_eta"] > 0.5
    # the loss keeps falling overall but not monotonically (the EoS signature)
    assert large_losses[-1] < 0.5 * large_losses[2]
    assert any(b > a for a, b in zip(large_losses, large_losses[1:]))
