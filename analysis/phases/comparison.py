"""Between-seed metrics: mode connectivity, CKA and weight distance.

* :func:`mode_connectivity` -- ``mc`` of Yang et al. (2021) on the straight
  path between two models, on the training error.
* :func:`linear_cka` -- linear centred kernel alignment (Kornblith, Norouzi,
  Lee & Hinton 2019, "Similarity of Neural Network Representations
  Revisited", ICML) of two models' logits.
* :func:`l2_distance` -- Euclidean distance between two state dicts.
* :func:`compare_runs` / :func:`between_seed_metrics` -- all three for the
  seeds of one sweep cell (models rebuilt from their final state dicts).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import connectivity, zoo
from ..json_safe import finite_or_none

__all__ = [
    "ModeConnectivity",
    "PairMetrics",
    "mode_connectivity",
    "mc_from_path",
    "linear_cka",
    "l2_distance",
    "logits",
    "model_from_state",
    "compare_runs",
    "between_seed_metrics",
    "supports_alignment",
    "ALIGNMENTS",
    "PAIR_METRICS",
]


# --------------------------------------------------------------------------- mode connectivity


@dataclass
class ModeConnectivity:
    """``mc`` and the path it was read from.  ``float(result)`` is ``mc``."""

    mc: float
    t_star: float
    t: np.ndarray
    values: np.ndarray  # the metric along the path (train error by default)
    v0: float
    v1: float
    barrier_height: float  # max_t v(t) - ((1-t) v0 + t v1): the usual LMC barrier, for reference
    metric: str

    def __float__(self) -> float:
        return float(self.mc)

    def to_dict(self) -> dict:
        return {
            "mc": finite_or_none(self.mc),
            "t_star": float(self.t_star),
            "t": [float(x) for x in self.t],
            "values": [finite_or_none(v) for v in self.values],
            "v0": finite_or_none(self.v0),
            "v1": finite_or_none(self.v1),
            "barrier_height": finite_or_none(self.barrier_height),
            "metric": self.metric,
        }


def mc_from_path(t: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """``(mc, t*)`` from a metric sampled along a path with endpoints at ``t = 0`` and ``t = 1``.

    ``mc = (v0 + v1) / 2 - v(t*)`` with ``t* = argmax_t |v(t) - (v0 + v1) / 2|``
    over the sampled ``t`` (endpoints included, as in Yang et al. 2021, eq. for
    ``mc``).  On an error or a loss, a barrier (the path rises above the
    endpoints) gives ``mc < 0``, a path that dips below them ``mc > 0``.

    Ties in ``|v(t) - mean|`` (equal up to 1e-12) go to the point with the
    larger ``v(t)`` (the barrier side), then to the one nearest ``t = 0.5``;
    this makes ``mc`` symmetric in the two models.  Caveat inherited from the
    definition: with unequal endpoints, ``|mc| >= |v0 - v1| / 2`` even on a
    perfectly straight profile, so ``mc`` is only "about zero" for pairs of
    similarly trained models -- the seeds of one sweep cell.
    """
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1 or len(t) < 2:
        raise ValueError("t and values must be 1-D arrays of the same length (at least 2)")
    i0 = np.flatnonzero(np.isclose(t, 0.0))
    i1 = np.flatnonzero(np.isclose(t, 1.0))
    if not len(i0) or not len(i1):
        raise ValueError("t must include the endpoints 0 and 1")
    v0, v1 = float(v[i0[0]]), float(v[i1[0]])
    mean = 0.5 * (v0 + v1)
    if not (math.isfinite(v0) and math.isfinite(v1)):
        return float("nan"), float("nan")
    dev = np.abs(np.where(np.isfinite(v), v, np.inf) - mean)
    top = np.max(dev)
    if not math.isfinite(top):  # a non-finite point on the path: an unbounded barrier
        k = int(np.flatnonzero(~np.isfinite(v))[0])
        return float("-inf"), float(t[k])
    cand = np.flatnonzero(dev >= top - 1e-12)
    k = min(cand, key=lambda c: (-v[c], abs(t[c] - 0.5), t[c]))
    return float(mean - v[k]), float(t[k])


def mode_connectivity(
    model_a: nn.Module,
    model_b: nn.Module | Mapping[str, torch.Tensor],
    data: tuple[torch.Tensor, torch.Tensor],
    steps: int = 11,
    *,
    metric: str = "error",
    align: bool = False,
) -> ModeConnectivity:
    """Mode connectivity ``mc`` of Yang et al. (2021) on the linear path ``a -> b``.

    ``theta(t) = (1 - t) theta_a + t theta_b`` at ``steps`` evenly spaced
    ``t`` in [0, 1] (use an odd number so ``t = 0.5`` is included), evaluated
    on ``data`` (the training set) with :func:`analysis.connectivity.interpolate`
    (eval mode, no gradients, the callers' models untouched; BatchNorm buffers
    interpolated).  ``metric="error"`` (default) uses ``1 - accuracy``;
    ``"loss"`` uses the mean loss (regression data has only a loss).  See
    :func:`mc_from_path` for the formula.  Identical models give ``mc = 0``;
    a barrier gives ``mc < 0``.

    ``align=True`` first permutes ``model_b``'s hidden units onto
    ``model_a``'s by weight matching (Ainsworth et al. 2023,
    :func:`analysis.connectivity.weight_matching`; zoo ``mlp``/``cnn`` only)
    and measures the straight path to the permuted copy, which computes the
    same function as ``model_b``.  This removes the barriers that only come
    from the permutation symmetry -- a cheap stand-in for the trained Bezier
    curve of Yang et al.
    """
    if metric not in ("error", "loss"):
        raise ValueError(f"metric must be 'error' or 'loss', got {metric!r}")
    if steps < 3:
        raise ValueError("steps must be at least 3")
    if align:
        model_b = connectivity.weight_matching(model_a, model_b).model
    res = connectivity.interpolate(model_a, model_b, data, steps)
    if metric == "error":
        if res.accuracy is None:
            raise ValueError("metric='error' needs classification data (integer labels); use metric='loss'")
        values = 1.0 - np.asarray(res.accuracy, dtype=np.float64)
        barrier = connectivity.barrier_height(res.t, values)
    else:
        values = np.asarray(res.loss, dtype=np.float64)
        barrier = float(res.barrier_height)
    mc, t_star = mc_from_path(res.t, values)
    return ModeConnectivity(
        mc=mc,
        t_star=t_star,
        t=np.asarray(res.t, dtype=np.float64),
        values=values,
        v0=float(values[0]),
        v1=float(values[-1]),
        barrier_height=float(barrier),
        metric=metric,
    )


# --------------------------------------------------------------------------- CKA


def _as_matrix(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x.detach().cpu())
    t = t.to(torch.float64)
    if t.dim() == 1:
        t = t[:, None]
    if t.dim() != 2:
        t = t.reshape(t.shape[0], -1)
    return t


def linear_cka(logits_a, logits_b) -> float:
    """Linear CKA of two representations of the same ``n`` examples (Kornblith et al. 2019).

    ``X`` (n, d1) and ``Y`` (n, d2) are centred column-wise, then
    ``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, which equals
    ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with linear kernels
    ``K = X X^T``, ``L = Y Y^T``.  In [0, 1]; 1 for identical inputs;
    invariant to orthogonal transforms and isotropic scaling of either
    input (not to arbitrary invertible linear maps).  Computed in float64.
    Returns NaN if either input is constant (zero variance) or not finite.
    """
    X, Y = _as_matrix(logits_a), _as_matrix(logits_b)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"both inputs need the same number of rows (examples), got {X.shape[0]} and {Y.shape[0]}")
    if X.shape[0] < 2:
        raise ValueError("CKA needs at least two examples")
    if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
        return float("nan")
    X = X - X.mean(0, keepdim=True)
    Y = Y - Y.mean(0, keepdim=True)
    # scale first: keeps the fourth powers below in range for large logits
    sx, sy = X.norm(), Y.norm()
    if sx == 0 or sy == 0:
        return float("nan")
    X, Y = X / sx, Y / sy
    cross = torch.linalg.matrix_norm(Y.T @ X) ** 2
    norm_x = torch.linalg.matrix_norm(X.T @ X)
    norm_y = torch.linalg.matrix_norm(Y.T @ Y)
    return float(min(1.0, max(0.0, float(cross / (norm_x * norm_y)))))


# --------------------------------------------------------------------------- weights


def l2_distance(state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor]) -> float:
    """Euclidean distance ``||theta_a - theta_b||_2`` over all floating-point entries of two state dicts.

    Both must have the same keys and shapes; integer buffers (e.g. BatchNorm's
    ``num_batches_tracked``) are skipped.  Computed in float64.
    """
    if set(state_a) != set(state_b):
        extra = sorted(set(state_a) ^ set(state_b))
        raise ValueError(f"state dicts have different keys (e.g. {extra[0]!r})")
    total = 0.0
    for k in sorted(state_a):
        a, b = state_a[k], state_b[k]
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"{k!r} has shape {tuple(a.shape)} in one state and {tuple(b.shape)} in the other")
        if not (a.is_floating_point() and b.is_floating_point()):
            continue
        total += float((a.detach().cpu().double() - b.detach().cpu().double()).pow(2).sum())
    return math.sqrt(total)


# --------------------------------------------------------------------------- models from runs


def model_from_state(spec: dict, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Build ``spec`` and load ``state`` (eval mode); the global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        model = zoo.build(spec)
    model.load_state_dict(dict(state), strict=True)
    return model.eval()


@torch.no_grad()
def logits(model: nn.Module, X: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Outputs of ``model`` on ``X`` in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(X[s : s + chunk]) for s in range(0, X.shape[0], chunk)])
    finally:
        model.train(was_training)


@dataclass
class PairMetrics:
    """Between-seed metrics of two models of one cell.

    ``aligned``: whether mc was measured after weight matching (see
    :func:`compare_runs`); ``l2_distance`` is between the raw weights,
    ``l2_distance_aligned`` (when aligned) between ``a`` and the permuted ``b``.
    """

    seed_a: int
    seed_b: int
    mc: float | None = None
    cka: float | None = None
    l2_distance: float | None = None
    mode_connectivity: ModeConnectivity | None = None
    aligned: bool = False
    l2_distance_aligned: float | None = None

    def to_dict(self) -> dict:
        return {
            "seed_a": self.seed_a,
            "seed_b": self.seed_b,
            "mc": finite_or_none(self.mc),
            "cka": finite_or_none(self.cka),
            "l2_distance": finite_or_none(self.l2_distance),
            "aligned": self.aligned,
            "l2_distance_aligned": finite_or_none(self.l2_distance_aligned),
            "path": self.mode_connectivity.to_dict() if self.mode_connectivity is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "PairMetrics":
        path = d.get("path")
        mc = None
        if path is not None:
            nan = float("nan")
            mc = ModeConnectivity(
                mc=nan if path["mc"] is None else path["mc"],
                t_star=path["t_star"],
                t=np.asarray(path["t"], dtype=np.float64),
                values=np.asarray([nan if v is None else v for v in path["values"]], dtype=np.float64),
                v0=nan if path["v0"] is None else path["v0"],
                v1=nan if path["v1"] is None else path["v1"],
                barrier_height=nan if path["barrier_height"] is None else path["barrier_height"],
                metric=path["metric"],
            )
        return cls(
            d["seed_a"],
            d["seed_b"],
            d.get("mc"),
            d.get("cka"),
            d.get("l2_distance"),
            mc,
            bool(d.get("aligned", False)),
            d.get("l2_distance_aligned"),
        )


PAIR_METRICS = ("mode_connectivity", "cka", "l2_distance")
ALIGNMENTS = ("weight_matching", "none")


def supports_alignment(spec: dict) -> bool:
    """Whether weight matching knows this architecture's permutation symmetry (zoo mlp/cnn)."""
    try:
        connectivity.permutation_spec(spec)
    except NotImplementedError:
        return False
    return True


def compare_runs(
    run_a,
    run_b,
    *,
    steps: int = 11,
    metrics: Sequence[str] = PAIR_METRICS,
    alignment: str = "weight_matching",
) -> PairMetrics:
    """Between-seed metrics of two :class:`~analysis.phases.runs.RunResult` of the same cell.

    Models are rebuilt from the runs' final ``state`` dicts.  ``mc`` is on
    the training error over the cell's training set (the labels the models
    were trained on); CKA compares the two models' logits on the same
    training inputs.  ``alignment="weight_matching"`` (default) measures mc
    after permuting ``b`` onto ``a`` (see :func:`mode_connectivity`) when the
    architecture supports it (zoo ``mlp``/``cnn``; transformers fall back to
    the raw straight path, ``aligned=False``); ``"none"`` always uses the raw
    straight path.
    """
    from .runs import run_data  # local: runs imports this module

    if run_a.state is None or run_b.state is None:
        raise ValueError("both runs need their final state dict (RunResult.state) for between-seed metrics")
    if run_a.spec != run_b.spec:
        raise ValueError("the two runs have different model specs")
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    out = PairMetrics(seed_a=run_a.config.seed, seed_b=run_b.config.seed)
    if "l2_distance" in metrics:
        out.l2_distance = l2_distance(run_a.state, run_b.state)
    if "mode_connectivity" in metrics or "cka" in metrics:
        td = run_data(run_a.config)
        a = model_from_state(run_a.spec, run_a.state)
        b = model_from_state(run_b.spec, run_b.state)
        if "mode_connectivity" in metrics:
            target = b
            if alignment == "weight_matching" and supports_alignment(run_a.spec):
                target = connectivity.weight_matching(a, b).model
                out.aligned = True
                if "l2_distance" in metrics:
                    out.l2_distance_aligned = l2_distance(run_a.state, target.state_dict())
            res = mode_connectivity(a, target, td.train, steps=steps)
            out.mode_connectivity = res
            out.mc = res.mc
        if "cka" in metrics:
            X = td.train[0]
            out.cka = linear_cka(logits(a, X), logits(b, X))
    return out


def between_seed_metrics(
    run_results: Sequence,
    *,
    steps: int = 11,
    metrics: Sequence[str] = PAIR_METRICS,
    alignment: str = "weight_matching",
) -> list[PairMetrics]:
    """:func:`compare_runs` for every pair of seeds of one cell (in seed order)."""
    runs = sorted(run_results, key=lambda r: r.config.seed)
    return [
        compare_runs(a, b, steps=steps, metrics=metrics, alignment=alignment) for a, b in itertools.combinations(runs, 2)
    ]
