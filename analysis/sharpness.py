"""Sharpness during training: the top Hessian eigenvalue, measured as the weights move.

:class:`SharpnessTracker` plugs into :func:`analysis.train.train` as
``on_step``.  Every ``every`` steps it measures, on one fixed batch:

* ``sharpness`` -- the top eigenvalue of the loss Hessian: the first
  measurement by Lanczos (:func:`top_eigenpair`) from a seeded random
  vector, each later one warm-started from the previous measurement's top
  Ritz pairs (:func:`analysis.warm_start.warm_top_eigenpair`: Rayleigh-Ritz
  on the old top vector and those old vectors that could have overtaken it,
  expanded by the residual; ``warm_start=False`` makes
  every measurement a cold Lanczos; :class:`SharpnessTracker` gives the
  numbers behind the default);
* optionally the Hessian trace (Hutch++);
* for Adam/AdamW, the top eigenvalue of the *preconditioned* Hessian
  ``P^-1 H`` (computed as the similar symmetric ``P^-1/2 H P^-1/2``).

Stability thresholds (what the tracked quantity is compared against):

* SGD / full-batch GD (Cohen et al. 2021, "Gradient descent on neural
  networks typically occurs at the edge of stability"): sharpness ``2/eta``.
  With heavy-ball momentum ``beta`` (torch's ``SGD(momentum=beta)``) the
  threshold of the same paper's appendix is ``(2 + 2 beta)/eta``; it is
  ``2/eta`` for ``momentum=0``.
* Adam (Cohen et al. 2022, "Adaptive gradient methods at the edge of
  stability", arXiv 2207.14484): the *preconditioned sharpness*
  ``lambda_1(P^-1 H)`` equilibrates at ``(2 + 2 beta1) / ((1 - beta1) eta)``,
  i.e. ``38/eta`` for ``beta1 = 0.9``.  There the Adam step is
  ``w -= P^-1 m`` read as ``w -= eta * P^-1 m`` with the EMA momentum
  ``m = beta1 m + (1 - beta1) g``, so ``P = (1 - beta1^t) diag(sqrt(v_hat) + eps)``
  (the bias correction of ``m`` folded into ``P``, no ``1/eta`` in ``P``); that
  is the ``P`` used here.  (Folding ``1/eta`` into ``P`` instead would make the
  threshold the dimensionless 38.)

Per-run metrics (:meth:`SharpnessTracker.summary`), on the measured steps:

* ``progressive_sharpening`` -- last measured sharpness / first;
* ``eos_step`` -- first measured step whose tracked quantity (sharpness for
  SGD, preconditioned sharpness for Adam) reaches ``0.9 x threshold``
  (``EOS_FRACTION``; the 10% margin because sharpness approaches the edge
  from below and then oscillates around it); ``None`` if never;
* ``frac_above_2_over_eta`` -- fraction of measured steps whose tracked
  quantity is at or above the threshold (``2/eta`` for GD; the Adam
  counterpart for Adam).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import curvature
from .warm_start import block_top_eigenpair, next_warm_start, warm_top_eigenpair
from .json_safe import finite_or_none

__all__ = [
    "SharpnessTracker",
    "PreconditionedOperator",
    "stability_threshold",
    "adam_preconditioner",
    "summarize",
    "block_top_eigenpair",
    "top_eigenpair",
    "EOS_FRACTION",
    "DEFAULT_EVERY",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_ITERS",
]

EOS_FRACTION = 0.9
# Defaults that keep tracking within ~30% of the training time of the training
# job's default run (benchmarks/sharpness_tracking.py measures it): a measurement
# costs ~15-20 mini-batch steps (setup + ~5 warm HVPs on 256 examples).
DEFAULT_EVERY = 50
DEFAULT_BATCH_SIZE = 256
DEFAULT_MAX_ITERS = 20
# Relative Lanczos residual r: |lambda - theta| <= r for *some* eigenvalue lambda, and <= r^2 / gap
# for the top one (Kato-Temple), i.e. ~1e-3 relative for a 10% gap -- if the Ritz value is the top
# eigenvalue's: a start with little weight on the top eigenvector can stop on the second.  Benchmark
# (b) of benchmarks/sharpness_tracking.py, 24 runs: errors over 1e-3 at 1e-2 in 17 cold (worst 1.7e-1)
# and 9 warm; at 3e-3 in 6 cold and none warm (README, "Sharpness during training").  Hence the
# default: warm starts at 3e-3, the only setting that met 1e-3 at every measurement, for ~0.8x the
# products of cold starts at 1e-2.
DEFAULT_TOL = 3e-3
DEFAULT_WARM_START = True
# A warm start keeps the previous measurement's top WARM_BLOCK Ritz pairs, not only the top
# one: when the top eigenvalues swap between measurements (seen at the edge of stability) the
# new top direction is the old second or third, and Lanczos from the old top vector alone
# stops on what is now the second eigenvalue (it is an eigenvector there, residual ~0).  Which
# of them are re-tested follows from how far the old top vector's product shows the Hessian moved.
WARM_BLOCK = 3

def stability_threshold(optimizer: str, lr: float, *, momentum: float = 0.0, beta1: float = 0.9) -> float:
    """The value the tracked sharpness equilibrates at (see the module docstring)."""
    if lr <= 0:
        raise ValueError("lr must be positive")
    if optimizer == "sgd":
        return (2.0 + 2.0 * momentum) / lr
    if optimizer in ("adam", "adamw"):
        return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)
    raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {optimizer!r}")


def adam_preconditioner(model: nn.Module, optimizer: torch.optim.Optimizer, names: list[str]) -> torch.Tensor | None:
    """``diag(P)`` of Cohen et al. 2022 for torch's Adam/AdamW, flattened in ``names`` order.

    ``P = (1 - beta1^t) (sqrt(v_t / (1 - beta2^t)) + eps)``; ``None`` before the first step.
    """
    params = dict(model.named_parameters())
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    parts = []
    for name in names:
        p = params[name]
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state:
            return None
        group = group_of[id(p)]
        beta1, beta2 = group["betas"]
        t = float(state["step"])
        v_hat = state["exp_avg_sq"].detach() / (1.0 - beta2**t)
        parts.append(((1.0 - beta1**t) * (v_hat.sqrt() + group["eps"])).reshape(-1))
    return torch.cat(parts)


class PreconditionedOperator:
    """``P^-1/2 H P^-1/2`` (same eigenvalues as ``P^-1 H``, but symmetric, so Lanczos applies)."""

    def __init__(self, op: curvature.Operator, diag_p: torch.Tensor):
        self.op = op
        self.scale = diag_p.to(device=op.device, dtype=op.dtype).rsqrt()
        self.size, self.dtype, self.device = op.size, op.dtype, op.device

    @property
    def num_matvecs(self) -> int:
        return self.op.num_matvecs

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op.matvec(self.scale * v)


def summarize(records: list[dict], threshold: float, *, key: str = "sharpness") -> dict:
    """Per-run metrics from a tracker's records (see the module docstring).

    ``key`` names the tracked quantity compared with ``threshold``.
    """
    sharp = [(r["step"], r["sharpness"]) for r in records if r.get("sharpness") is not None]
    tracked = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    start, end = (sharp[0][1], sharp[-1][1]) if sharp else (None, None)
    eos_step = next((step for step, value in tracked if value >= EOS_FRACTION * threshold), None)
    above = sum(1 for _, value in tracked if value >= threshold)
    return {
        "sharpness_start": start,
        "sharpness_end": end,
        "sharpness_max": max((v for _, v in sharp), default=None),
        "progressive_sharpening": (end / start) if sharp and start > 0 else None,
        "eos_step": eos_step,
        "frac_above_2_over_eta": (above / len(tracked)) if tracked else None,
        "threshold": threshold,
        "tracked": key,
        "measurements": len(records),
    }


def top_eigenpair(op: curvature.Operator, v0: torch.Tensor, *, tol: float, max_iters: int, seed: int = 0, keep: int = 1,
                  history: list | None = None) -> dict:
    """Lanczos from ``v0`` until the top Ritz pair's relative residual is ``<= tol``.

    Returns ``{"eigenvalue", "residual", "converged", "ritz_vectors" (n, keep),
    "ritz_values" (keep,), "num_matvecs"}``: the top ``keep`` Ritz pairs seed the next warm start.
    (Unlike :func:`analysis.curvature.lanczos`, only the top pair decides when
    to stop, and the other Ritz vectors come back too.)  ``history``, if
    given, gets ``(products so far, top Ritz value, residual)`` after every
    product (the benchmark scores each against a reference).
    """
    start = op.num_matvecs
    n = op.size

    def stop(j, alphas, betas, beta) -> bool:
        evals, evecs = curvature._tridiag_eigh(alphas, betas)
        if history is not None:
            history.append((op.num_matvecs - start, float(evals[-1]), abs(beta * evecs[-1, -1])))
        return abs(beta * evecs[-1, -1]) <= tol * max(abs(evals[-1]), 1e-300) or j == n

    Q, alphas, betas, beta = curvature._lanczos_tridiagonal(op, v0, min(max_iters, n), curvature._generator(seed), stop)
    evals, evecs = curvature._tridiag_eigh(alphas, betas)
    residual = abs(beta * evecs[-1, -1])
    S = torch.as_tensor(evecs[:, ::-1][:, : min(keep, len(evals))].copy(), dtype=op.dtype, device=op.device)
    return {
        "eigenvalue": float(evals[-1]),
        "residual": float(residual),
        "converged": bool(residual <= tol * max(abs(evals[-1]), 1e-300) or Q.shape[1] == n),
        "ritz_vectors": Q @ S,
        "ritz_values": evals[::-1][: S.shape[1]].copy(),
        "num_matvecs": op.num_matvecs - start,
    }


class SharpnessTracker:
    """Measure the sharpness of a model every ``every`` steps; use as ``train(..., on_step=tracker)``.

    ``data``: the ``(X, y)`` training set; the fixed batch is its first
    ``batch_size`` rows after a seeded permutation (all of it if
    ``batch_size`` is ``None`` or at least its size).  ``optimizer``/``lr``/
    ``momentum``/``beta1`` give the threshold (:func:`stability_threshold`).
    ``trace`` adds a Hutch++ trace with ``trace_matvecs`` HVPs;
    ``preconditioned`` (default: on for Adam/AdamW) adds ``lambda_1(P^-1 H)``.
    Lanczos stops at relative residual ``tol`` or after ``max_iters`` HVPs.
    ``warm_start=True`` starts each measurement from the previous one's top
    ``WARM_BLOCK`` Ritz pairs (:func:`analysis.warm_start.warm_top_eigenpair`:
    one product on the old top vector bounds how far the Hessian moved, and
    only the old vectors within twice that of the top are re-tested by
    Rayleigh-Ritz, by Weyl's inequality the ones that could have overtaken it),
    falling back to a cold start if that does not converge within
    ``max_iters`` products (the first measurement is always cold).  It is
    the default, at ``tol=3e-3`` (:data:`DEFAULT_TOL`): the only setting of
    the benchmark that met 1e-3 at every measurement, for ~0.8x the products
    of cold starts at ``tol=1e-2``.  It follows swaps of the top eigenvalues,
    which Lanczos from the previous top vector alone does not.  At the same
    accuracy (within 1e-3 of a reference) it needs 0.41-1.05x the products
    of a cold start, 0.66x over eight runs (two models, mini-batch SGD and
    full-batch GD at two step sizes; part (b) of
    benchmarks/sharpness_tracking.py; 0.68x with the former three-vector
    block), short of the half aimed at.  Cold Lanczos reaches that accuracy
    in 6-10 products on these Hessians (a few outliers above a bulk near
    zero), and between measurements of mini-batch SGD the top eigenvector
    turns far (median overlap with the previous one 0.35-0.77, about as low
    every 5 steps as every 50) while the top two eigenvalues are within
    15-30%: every start pays about as many products as a cold one to resolve
    them.  Full-batch GD keeps it while sharpening (overlap ~1.00: one or two
    products, 0.41-0.46x) but not at the edge of stability (0.55-0.74x).
    ``warm_start=False`` gives cold starts.
    ``on_measure(record)`` receives each record as it is made; ``records``
    keeps them all.  ``final_step`` (the run's last step) is
    measured too, off the interval, so "end" sharpness is the end of training.
    """

    def __init__(
        self,
        data: tuple[torch.Tensor, torch.Tensor],
        *,
        lr: float,
        optimizer: str = "sgd",
        momentum: float = 0.0,
        beta1: float = 0.9,
        every: int = DEFAULT_EVERY,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        trace: bool = False,
        trace_matvecs: int = 30,
        preconditioned: bool | None = None,
        tol: float = DEFAULT_TOL,
        max_iters: int = DEFAULT_MAX_ITERS,
        warm_start: bool = DEFAULT_WARM_START,
        seed: int = 0,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        on_measure: Callable[[dict], Any] | None = None,
        final_step: int | None = None,
    ):
        if int(every) < 1:
            raise ValueError("every must be at least 1")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError("batch_size must be at least 1")
        X, y = data
        n = X.shape[0]
        if n == 0:
            raise ValueError("data is empty")
        if batch_size is not None and int(batch_size) < n:
            idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[: int(batch_size)]
            X, y = X[idx], y[idx]
        self.batch = (X, y)
        self.optimizer = optimizer
        self.lr = float(lr)
        momentum = momentum if optimizer == "sgd" else 0.0
        self.threshold = stability_threshold(optimizer, self.lr, momentum=momentum, beta1=beta1)
        self.adaptive = optimizer in ("adam", "adamw")
        self.preconditioned = self.adaptive if preconditioned is None else bool(preconditioned)
        if self.preconditioned and not self.adaptive:
            raise ValueError("preconditioned sharpness applies to Adam/AdamW only")
        self.every = int(every)
        self.trace = bool(trace)
        self.trace_matvecs = int(trace_matvecs)
        self.tol = float(tol)
        self.max_iters = int(max_iters)
        self.warm_start = bool(warm_start)
        self.seed = int(seed)
        self.loss_fn = loss_fn
        self.on_measure = on_measure
        self.final_step = final_step
        self.records: list[dict] = []
        self.seconds = 0.0
        self._previous: dict[str, torch.Tensor] = {}
        self._op: curvature.HessianOperator | None = None  # reused across measurements (no module copy each time)
        self._op_model: nn.Module | None = None

    @property
    def tracked_key(self) -> str:
        """The record field compared with the threshold."""
        return "preconditioned_sharpness" if self.preconditioned else "sharpness"

    def __call__(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict | None:
        if step % self.every and step != self.final_step:
            return None
        return self.measure(step, model, optimizer)

    def _top(self, op: curvature.Operator, which: str, seed: int) -> dict:
        previous = self._previous.get(which) if self.warm_start else None
        top = None
        if previous is not None:
            top = warm_top_eigenpair(op, previous, tol=self.tol, max_iters=self.max_iters, keep=WARM_BLOCK)
        if top is None or not top["converged"]:
            # cold (first measurement, or the warm block went stale): a seeded random start
            v0 = torch.randn(op.size, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
            cold = top_eigenpair(op, v0.to(device=op.device, dtype=op.dtype), tol=self.tol, max_iters=self.max_iters,
                                 seed=seed, keep=WARM_BLOCK)
            # both are Ritz values, i.e. lower bounds of the top eigenvalue: the larger is the better one
            if top is None or cold["converged"] or cold["eigenvalue"] >= top["eigenvalue"]:
                top = cold
        state = next_warm_start(top, previous, keep=WARM_BLOCK)
        if bool(torch.isfinite(state["vectors"]).all()) and np.isfinite(state["values"]).all() and math.isfinite(top["residual"]):
            self._previous[which] = state
        else:  # a diverged step: start the next measurement afresh
            self._previous.pop(which, None)
        return top

    def measure(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
        """Measure now (whatever ``step`` is) and return the record."""
        t0 = time.perf_counter()
        seed = self.seed + len(self.records)
        record: dict = {
            "step": int(step),
            "sharpness": None,
            "converged": False,
            "matvecs": 0,
            "threshold": self.threshold,
            "trace": None,
            "trace_stderr": None,
            "preconditioned_sharpness": None,
        }
        if self._op is None or model is not self._op_model:
            self._op, self._op_model = curvature.HessianOperator(model, self.loss_fn, self.batch), model
        else:
            self._op.load_weights(model)
        op, start = self._op, self._op.num_matvecs
        try:
            # diverged weights have no meaningful curvature (and would poison the warm start)
            if all(bool(torch.isfinite(p).all()) for p in op.params.values()):
                top = self._top(op, "sharpness", seed)
                record.update(sharpness=finite_or_none(top["eigenvalue"]), converged=top["converged"])
                if self.trace:
                    est = curvature.hutchpp(op, self.trace_matvecs, seed=seed)
                    record.update(trace=finite_or_none(est.estimate), trace_stderr=finite_or_none(est.stderr))
                if self.preconditioned and optimizer is not None:
                    diag_p = adam_preconditioner(model, optimizer, op.names)
                    if diag_p is not None:
                        pre = self._top(PreconditionedOperator(op, diag_p), "preconditioned", seed)
                        record["preconditioned_sharpness"] = finite_or_none(pre["eigenvalue"])
        except np.linalg.LinAlgError:  # non-finite loss at finite weights (overflow)
            self._previous.clear()
        finally:
            op.release()
        record["matvecs"] = int(op.num_matvecs - start)
        record["seconds"] = time.perf_counter() - t0
        self.seconds += record["seconds"]
        self.records.append(record)
        if self.on_measure is not None:
            self.on_measure(dict(record))
        return record

    def summary(self) -> dict:
        out = summarize(self.records, self.threshold, key=self.tracked_key)
        out["matvecs"] = sum(r["matvecs"] for r in self.records)
        out["seconds"] = self.seconds
        return out


# Cohen et al. 2021's experiment in miniature (a few CPU seconds): full-batch GD, MSE on one-hot targets.
EOS_DEMO_SPEC = {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10, "activation": "tanh"}
EOS_DEMO_EXAMPLES = 256


def edge_of_stability_demo(lr: float, *, steps: int = 400, every: int = 20, seed: int = 0):
    """Train the tanh MLP ``EOS_DEMO_SPEC`` by full-batch GD at step size ``lr`` on the first 256 digits.

    Returns ``(tracker, train_result)``.  Sharpness starts near 1.45: at
    ``lr = 1`` (2/eta = 2) it rises, overshoots once and then hovers just
    above 2; at ``lr = 0.25`` (2/eta = 8) it only sharpens.
    """
    import torch.nn.functional as F

    from . import data, train

    X, y = data.load("digits", "train")
    X, Y = X[:EOS_DEMO_EXAMPLES], F.one_hot(y[:EOS_DEMO_EXAMPLES], 10).float()
    tracker = SharpnessTracker((X, Y), lr=lr, every=every, batch_size=None, final_step=steps, seed=seed)
    result = train.train(EOS_DEMO_SPEC, (X, Y), optimizer="sgd", lr=lr, momentum=0.0, batch_size=EOS_DEMO_EXAMPLES,
                         steps=steps, seed=seed, eval_every=every, on_step=tracker)
    return tracker, result
