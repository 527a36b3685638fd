"""1-D loss lines (exported as :func:`analysis.landscape.line`): to another model, or along a direction.

Points are evaluated as :mod:`analysis.landscape` describes (exact ``theta + t d``,
eval mode, a private copy of the model), coarse to fine in the segments of
:mod:`analysis.line_blocks`: the coarse curve first, then the rest in order.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from . import line_blocks, metrics
from .directions import _as_param_dict, _flat, _params_of, hessian_directions, pca_directions, random_direction
from .evaluators import DEFAULT_MEMORY_BUDGET, batch_size_for, evaluate_points, make_evaluator, prepare
from .json_safe import finite_or_none
from .landscape_results import Line
from .point_evaluator import LossFn
from .allocator import keep_freed_memory
from .point_parallel import PointParallel
from .sources.base import unwrap
from .state_checks import architecture_difference


def line(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    end: nn.Module | Mapping[str, torch.Tensor] | None = None,
    direction: Mapping[str, torch.Tensor] | None = None,
    axes: str = "random",
    trajectory: Any = None,
    steps: int = 51,
    span: tuple[float, float] | float | None = None,
    seed: int = 0,
    include_bias: bool = False,
    batchnorm: str | None = None,
    resume: Mapping[str, Any] | None = None,
    on_progress: Callable[[dict], Any] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    fast: bool = True,
    threads: int | None = None,
    loss_fn: LossFn | None = None,
    accuracy_fn: LossFn | None = None,
    point_batching: str = "auto",
) -> Line:
    """Loss along a line: to ``end`` (another model/state) or along ``direction``.

    With ``end``: ``theta(t) = theta_a + t (theta_b - theta_a)``, ``span``
    default ``(0, 1)``; a number ``s`` is a half-width around the midpoint,
    ``t`` in ``[0.5 - s, 0.5 + s]``; ``batchnorm="interpolate"`` (default here) also
    interpolates floating-point buffers, ``"keep"`` uses ``model``'s.
    Without ``end``: ``theta(t) = theta + t d`` with ``direction``, else by
    ``axes``: a seeded filter-normalised random direction (``"random"``), the
    top Hessian eigenvector of the loss on ``data`` (``"hessian"``, unit norm),
    or the first principal direction of ``trajectory`` (``"pca"``: a list of
    state dicts or a Trajectory) -- the first axis of :func:`analysis.landscape.plane`'s
    plane on the same axes; ``span`` default ``(-1, 1)`` (pca: 1.25x the
    trajectory's extent along it); a number ``s`` gives ``[-s, s]``.  A pair
    ``(t0, t1)`` is used as given.
    ``on_progress`` gets ``{"type": "points", "points": [{"k", "t", "loss",
    "accuracy"}], "done", "total", "level", "levels"}`` events (level 0: the
    coarse curve).  ``resume={"computed": mask}`` (optionally ``"loss"`` and
    ``"accuracy"`` arrays) skips the points the mask marks; the others keep
    their values.  ``threads``, ``loss_fn``,
    ``accuracy_fn`` and ``point_batching`` are as for :func:`plane`.  ``model``
    (and ``end``) may be :class:`analysis.sources.LoadedModel` s (the model's own
    loss and accuracy are used).
    """
    model, loss_fn, accuracy_fn = unwrap(model, loss_fn, accuracy_fn)
    if end is not None and not isinstance(end, Mapping):
        end = unwrap(end)[0]
    keep_freed_memory()  # activations reused between points, not page-faulted afresh
    with PointParallel(threads) as parallel:
        return _line(**locals())


def _line(
    *, model, data, end, direction, axes, trajectory, steps, span, seed, include_bias, batchnorm, resume, on_progress, batch_size, device, fast,
    threads, loss_fn, accuracy_fn, point_batching, parallel: PointParallel,
) -> Line:
    t0 = time.perf_counter()
    if not 2 <= steps <= 10_001:
        raise ValueError("steps must be between 2 and 10001")
    work, X, y = prepare(model, data, device)
    centre = _params_of(work)
    names = list(centre)
    meta: dict[str, Any] = {}
    if end is not None:
        kind = "interpolation"
        mode = batchnorm or "interpolate"
        end_state = end.state_dict() if isinstance(end, nn.Module) else dict(end)
        why = architecture_difference(centre, {n: t for n, t in end_state.items() if n in centre})
        if why:
            raise ValueError(f"end: the two models have different architectures ({why})")
        d = {n: end_state[n].detach().to(centre[n]) - centre[n] for n in names}
        if isinstance(span, (tuple, list)):
            lo, hi = span
        elif span is None:
            lo, hi = 0.0, 1.0
        else:  # a half-width around the segment's midpoint: 0.5 is the plain segment
            lo, hi = 0.5 - float(span), 0.5 + float(span)
        meta["distance"] = float(_flat(d, names).norm())
    else:
        kind = "direction"
        mode = batchnorm or "keep"
        half_width = 1.0
        if direction is not None:
            d = {n: direction[n].to(centre[n]) for n in names}
        elif axes == "random":
            d = random_direction(centre, seed=seed, include_bias=include_bias)
            meta.update(seed=seed, filter_normalized=True)
        elif axes == "hessian":
            d, _, hmeta = hessian_directions(work, (X, y), seed=seed, loss_fn=loss_fn)
            meta.update(axes="hessian", eigenvalue=hmeta["eigenvalues"][0], seed=seed, filter_normalized=False)
        elif axes == "pca":
            if trajectory is None:
                raise ValueError("axes='pca' needs trajectory= (a list of state dicts or a Trajectory)")
            states = trajectory.states if hasattr(trajectory, "states") else trajectory
            d, _, ratio, coords = pca_directions([_as_param_dict(s, names) for s in states], centre, include_bias=include_bias)
            extent = float(np.abs(coords[:, 0]).max()) if len(coords) else 0.0
            half_width = 1.25 * extent if extent > 0 else 1.0
            meta.update(axes="pca", explained_variance_ratio=float(ratio[0]), trajectory_t=[float(c) for c in coords[:, 0]],
                        filter_normalized=False)
        else:
            raise ValueError(f"axes must be 'random', 'hessian' or 'pca', got {axes!r}")
        lo, hi = span if isinstance(span, (tuple, list)) else (-half_width, half_width) if span is None else (-float(span), float(span))
        meta["norm"] = float(_flat(d, names).norm())
    if mode not in ("keep", "recompute", "interpolate"):
        raise ValueError(f"batchnorm must be 'keep', 'recompute' or 'interpolate', got {mode!r}")
    t = np.linspace(float(lo), float(hi), steps)
    emit = on_progress or (lambda event: None)
    scoring = {"loss_fn": loss_fn, "accuracy_fn": accuracy_fn, "point_batching": point_batching}
    has_accuracy = accuracy_fn is not None or (loss_fn is None and metrics.is_classification(y))
    losses, accs, computed = _resume(resume, steps, has_accuracy)
    # non-persistent buffers (rotary tables, causal masks) are not in a state dict and stay as they are
    float_buffers = [n for n, b in work.named_buffers() if b.is_floating_point() and (end is None or n in end_state)]
    if mode == "interpolate" and end is not None and float_buffers:
        # buffers differ per point: evaluate one point at a time on interpolated buffers
        start_buf = {n: b.clone() for n, b in work.named_buffers()}

        def evaluate(idx: np.ndarray):
            (k,) = idx
            for n, b in work.named_buffers():
                if n in float_buffers:
                    b.copy_(start_buf[n] + float(t[k]) * (end_state[n].to(b) - start_buf[n]))
            return evaluate_points(work, (X, y), [d], t[idx, None], centre=centre, fast=fast, **scoring)

        call = 1
    else:
        ev = make_evaluator(work, centre, [d], X, y, "keep" if mode == "interpolate" else mode, DEFAULT_MEMORY_BUDGET, fast,
                            **scoring)
        parallel.attach(ev)
        call = (batch_size or batch_size_for(ev)) * parallel.workers

        def evaluate(idx: np.ndarray):
            return parallel.evaluate(t[idx, None])

    parts = line_blocks.segments(steps)
    with torch.no_grad():
        for number, segment in enumerate(parts):
            # calls cut from the segment's own start: a point's value never depends on other segments
            for s in range(0, len(segment), call):
                idx = segment[s : s + call]
                idx = idx[~computed[idx]]
                if not len(idx):
                    continue
                l, a = evaluate(idx)
                losses[idx] = l
                if accs is not None:
                    accs[idx] = a
                computed[idx] = True
                points = [_line_point(int(k), t[k], l[m], None if a is None else a[m : m + 1]) for m, k in enumerate(idx)]
                emit({"type": "points", "points": points, "done": int(computed.sum()), "total": steps,
                      "level": min(number, 1), "levels": 2 if len(parts) > 1 else 1})
    return Line(t=t, loss=losses, accuracy=accs, kind=kind, directions=meta, seconds=time.perf_counter() - t0)


def _resume(resume, steps: int, has_accuracy: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    losses = np.full(steps, np.nan)
    accs = np.full(steps, np.nan) if has_accuracy else None
    if resume is None:
        return losses, accs, np.zeros(steps, dtype=bool)
    computed = np.asarray(resume["computed"], dtype=bool).copy()
    if computed.shape != (steps,):
        raise ValueError(f"resume['computed'] has shape {computed.shape}, expected ({steps},)")
    if resume.get("loss") is not None:
        losses[:] = [np.nan if v is None else v for v in resume["loss"]]
    if accs is not None and resume.get("accuracy") is not None:
        accs[:] = [np.nan if v is None else v for v in resume["accuracy"]]
    return losses, accs, computed


def _line_point(k, tk, loss, acc) -> dict:
    return {"k": int(k), "t": float(tk), "loss": finite_or_none(loss), "accuracy": None if acc is None else float(acc[0])}
