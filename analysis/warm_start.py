"""Warm-started top eigenpair: re-test only the previous Ritz vectors that could have overtaken the top one.

A tracker measuring the top Hessian eigenvalue every few steps keeps the
previous measurement's top Ritz pairs ``(u_i, theta_i)`` and the top pair's
residual norm ``rho``.  :func:`warm_top_eigenpair` spends its first product on
``u_1`` and from it bounds how far the Hessian moved:
``||dH|| >= ||dH u_1|| >= eps = hypot(u_1'H'u_1 - theta_1, max(0, ||r_1'|| - rho))``
(``r_1'`` the new residual of ``u_1``; the two parts are orthogonal, as both
residuals are orthogonal to ``u_1``).  By Weyl's inequality every eigenvalue
moves by at most ``||dH||``, so a direction whose value was more than
``2 ||dH||`` below the top cannot have overtaken it; ``u_i`` joins the
Rayleigh-Ritz block only if ``theta_1 - theta_i <= 2 eps``.  The block is then
expanded by the top pair's residual (:func:`block_top_eigenpair`), which is
Lanczos from the top Ritz vector that keeps the other block vectors.

So a top vector that stayed put (full-batch GD while sharpening) costs two
products instead of a three-vector block's three; a swap of the top
eigenvalues moves ``u_1``'s Rayleigh quotient by the gap and brings the old
third vector in too (``tests/analysis/test_sharpness.py``).  ``eps`` is a
*lower* bound of ``||dH||``: a change that leaves ``u_1`` an eigenvector with
the same value but lifts another direction past it is invisible to it, so the
old second vector, the likeliest to overtake, is always re-tested (about 1%
more products in the benchmark); a third or later one lifted past an
unchanged ``u_1`` is seen only if the expansions find it (or the tracker's
cold fallback or the next measurement does).  A vector left out of the block keeps its old value raised by ``eps``
(how far Weyl lets it have risen, at least) for the next measurement's test.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import curvature

__all__ = ["block_top_eigenpair", "warm_top_eigenpair", "next_warm_start", "WEYL_FACTOR"]

# two eigenvalues can cross only if the perturbation is at least half their gap (Weyl)
WEYL_FACTOR = 2.0


def block_top_eigenpair(op: curvature.Operator, block: torch.Tensor, *, tol: float, max_iters: int, keep: int = 1,
                        history: list | None = None, products: torch.Tensor | None = None) -> dict:
    """Rayleigh-Ritz on ``span(block)`` (n, k), expanded by the top Ritz pair's residual until its relative residual is ``<= tol``.

    Each expansion adds the (orthogonalised) residual ``H u - theta u`` to
    the basis: Lanczos from the top Ritz vector that also keeps the other
    block vectors, so the top of the *block* is found even when its order
    changed.  ``H u`` is a combination of the stored products, so the stop
    costs no extra product; at most ``max_iters`` products in all.
    ``products``: ``H`` times the first columns of an orthonormal ``block``,
    already computed (they are not counted again).  Returns ``{"eigenvalue",
    "residual", "converged", "ritz_vectors" (n, keep), "ritz_values" (keep,),
    "num_matvecs"}``; ``history`` gets ``(products so far, top Ritz value,
    residual)`` after every product.  A direction outside the block that
    became the top one is found only through the expansions (an exactly
    invariant block stops at once): the tracker's cold fallback and the
    benchmark's reference are the guard, not this function.
    """
    start = op.num_matvecs - (0 if products is None else products.shape[1])
    block = block.to(device=op.device, dtype=op.dtype).reshape(op.size, -1)[:, : min(max_iters, op.size)]
    if products is None:
        V, _ = torch.linalg.qr(block)
        HV = torch.stack([op.matvec(V[:, i]) for i in range(V.shape[1])], dim=1)
    else:
        V = block
        HV = torch.cat([products] + [op.matvec(V[:, i])[:, None] for i in range(products.shape[1], V.shape[1])], dim=1)
    while True:
        T = (V.T @ HV).double().cpu().numpy()
        evals, evecs = np.linalg.eigh((T + T.T) / 2)
        S = torch.as_tensor(evecs[:, ::-1].copy(), dtype=op.dtype, device=op.device)
        theta = float(evals[-1])
        r = HV @ S[:, 0] - theta * (V @ S[:, 0])
        residual = float(r.norm())
        if history is not None:
            history.append((op.num_matvecs - start, theta, residual))
        converged = residual <= tol * max(abs(theta), 1e-300) or V.shape[1] == op.size
        if converged or op.num_matvecs - start >= max_iters:
            break
        for _ in range(2):  # "twice is enough"
            r = r - V @ (V.T @ r)
        if float(r.norm()) <= 1e-10 * max(residual, 1e-300):
            break  # nothing new to add (round-off): report unconverged
        w = r / r.norm()
        V, HV = torch.cat([V, w[:, None]], dim=1), torch.cat([HV, op.matvec(w)[:, None]], dim=1)
    k = min(keep, S.shape[1])
    return {
        "eigenvalue": theta,
        "residual": residual,
        "converged": bool(converged),
        "ritz_vectors": V @ S[:, :k],
        "ritz_values": evals[::-1][:k].copy(),
        "num_matvecs": op.num_matvecs - start,
    }


def warm_top_eigenpair(op: curvature.Operator, previous: dict, *, tol: float, max_iters: int, keep: int = 1,
                       history: list | None = None) -> dict:
    """The top eigenpair of ``op`` from the previous measurement's ``{"vectors" (n, k), "values" (k,), "residual"}``.

    See the module docstring: one product on the old top vector, then
    Rayleigh-Ritz on it and the old vectors that could have overtaken it,
    expanded until the relative residual is ``<= tol``.  Same result as
    :func:`block_top_eigenpair`, plus ``"drift"`` (``eps``) and
    ``"retested"`` (indices of the old vectors in the block).
    """
    vectors = previous["vectors"].to(device=op.device, dtype=op.dtype)
    values = np.asarray(previous["values"], dtype=np.float64)
    u1 = vectors[:, 0] / vectors[:, 0].norm()
    w1 = op.matvec(u1)
    theta = float(u1 @ w1)
    drift = math.hypot(theta - values[0], max(0.0, float((w1 - theta * u1).norm()) - float(previous["residual"])))
    # the runner-up always (it is what overtakes the top when the top vector stays put, which
    # the drift cannot see), the others when Weyl lets them have crossed
    retested = [0] + [i for i in range(1, min(len(values), vectors.shape[1]))
                      if i == 1 or values[0] - values[i] <= WEYL_FACTOR * drift]
    block = [u1]
    for i in retested[1:]:
        v = vectors[:, i]
        for _ in range(2):
            v = v - torch.stack(block, dim=1) @ (torch.stack(block, dim=1).T @ v)
        if float(v.norm()) > 1e-8:
            block.append(v / v.norm())
    top = block_top_eigenpair(op, torch.stack(block, dim=1), tol=tol, max_iters=max_iters, keep=keep, history=history,
                              products=w1[:, None])
    top.update(drift=drift, retested=retested)
    return top


def next_warm_start(top: dict, previous: dict | None = None, keep: int = 1) -> dict:
    """The state the next measurement starts from: this one's top Ritz pair, then up to ``keep - 1`` more by
    value among its other Ritz pairs and the previous vectors it did not re-test (values raised by this
    measurement's drift: an undisturbed old eigenvector beats a Ritz vector of a two-product Krylov space)."""
    vectors, values = top["ritz_vectors"], top["ritz_values"]
    candidates = [(float(values[i]), vectors[:, i]) for i in range(1, vectors.shape[1])]
    if previous is not None and "retested" in top:
        old = previous["vectors"].to(device=vectors.device, dtype=vectors.dtype)
        candidates += [(float(previous["values"][i]) + top["drift"], old[:, i])
                       for i in range(min(len(previous["values"]), old.shape[1])) if i not in top["retested"]]
    cols, kept = [vectors[:, 0] / vectors[:, 0].norm()], [float(values[0])]
    for value, v in sorted(candidates, key=lambda c: -c[0]):
        if len(cols) >= keep:
            break
        for _ in range(2):
            v = v - torch.stack(cols, dim=1) @ (torch.stack(cols, dim=1).T @ v)
        if float(v.norm()) > 0.5:  # mostly new: still a candidate direction
            cols.append(v / v.norm())
            kept.append(value)
    return {"vectors": torch.stack(cols, dim=1).detach().clone(), "values": np.array(kept), "residual": top["residual"]}
