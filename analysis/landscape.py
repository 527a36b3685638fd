"""Loss landscapes: 1-D lines and 2-D planes through parameter space.

Every point is evaluated at exactly ``theta + a * d1 + b * d2`` built from the
centre ``theta`` (never by accumulating steps), in eval mode under
``torch.no_grad()``, on a private functional copy of the model: the caller's
model is never perturbed.

Directions
    ``axes="random"``: two seeded Gaussian directions, filter-normalised (Li et
    al. 2018): for every weight tensor with two or more dimensions, each output
    filter/row ``d[k]`` is rescaled to the norm of the weight's filter
    ``theta[k]``.  One-dimensional parameters (biases, BatchNorm/LayerNorm
    scales and shifts) get a zero direction unless ``include_bias=True``, in
    which case each such vector is rescaled to the norm of the parameter.
    ``axes="hessian"``: the top-2 Hessian eigenvectors of the loss on the
    evaluation data (:func:`analysis.curvature.lanczos`), unit norm.
    ``axes="pca"``: the top-2 principal directions of a training trajectory
    ``theta_t - theta_final`` (centred PCA, as in Li et al.), unit norm; the
    trajectory is projected onto the plane and returned.
    ``axes="three_models"``: the affine plane through ``model`` (origin) and
    ``models=(B, C)``: ``d1 = B - A``, ``d2 = C - A``, not normalised, so B is
    at (1, 0) and C at (0, 1); ``markers={name: state}`` (e.g. merges) are
    placed by least squares (:mod:`analysis.three_model_plane`).

Span units
    Coordinates multiply the directions.  For random (filter-normalised)
    directions ``a = 1`` moves every filter by its own norm; for hessian/pca
    directions (unit norm) ``a`` is a Euclidean distance in parameter space.

BatchNorm
    ``batchnorm="keep"`` (the default) evaluates in eval mode with the
    centre's running statistics at every point (buffers are not part of the
    directions).  ``batchnorm="recompute"`` re-estimates the running statistics
    at every point from the evaluation data (one extra pass per point, in
    chunks, cumulative average) before evaluating; it is slower and only uses
    the generic evaluator.  For :func:`line` between two checkpoints,
    ``batchnorm="interpolate"`` interpolates the floating-point buffers too.

Coarse to fine
    A plane is computed in levels: first every ``S``-th grid line (plus the last
    one) in both axes, so the coarse grid is a subset of the final grid, then
    whole rows (fixed ``a``) at row strides ``S/2, S/4, ..., 1``.  After each evaluated batch ``on_progress`` gets
    ``{"type": "points", "points": [{"i", "j", "a", "b", "loss", "accuracy"}],
    "done", "total", "level", "levels", "stride"}``; a ``{"type": "start", ...}``
    event with the axes and every level's ``strides`` (``[[row stride, column
    stride], ...]``, coarse first) comes first.  Pass ``resume=`` (a previous
    :class:`Surface`, its ``to_dict()``, or ``{"loss", "accuracy", "computed"}``
    arrays) to skip points that are already computed.  A line is computed coarse
    to fine too: 17 to 33 evenly spaced points first, then the rest in segments
    (:mod:`analysis.line_blocks`).

Speed
    Points are evaluated in batches of whole grid rows by an evaluator chosen
    per model and device (:mod:`analysis.evaluators`): zoo MLPs share the first
    layer per plane and the second along rows (:mod:`analysis.mlp_evaluator`);
    any other model on a CPU runs point by point on preallocated parameters
    with its first layer computed once per plane
    (:mod:`analysis.generic_evaluator`); on CUDA points are batched with
    ``vmap``.  ``threads=T`` splits every batch between T threads that each run
    torch single-threaded (:mod:`analysis.point_parallel`; safe in forked
    workers).  ``loss_fn(outputs, y)`` (a batch mean) / ``accuracy_fn(outputs,
    y)`` (a batch mean, or ``(correct, count)`` to weigh chunks by ``count``)
    replace the default cross-entropy/accuracy or mean squared error.  ``model``
    may be a :class:`analysis.sources.LoadedModel`, whose own loss and accuracy
    are then used unless ``loss_fn``/``accuracy_fn`` are given.

Array convention: ``loss[i, j]`` is the loss at ``(a[i], b[j])`` (``numpy``
"ij" indexing; transpose for a plotly heatmap whose ``z[row=y][col=x]``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .directions import (
    _as_param_dict,
    _flat,
    _params_of,
    filter_normalized_direction,
    hessian_directions,
    pca_directions,
    random_direction,
)
from .evaluators import DEFAULT_MEMORY_BUDGET, batch_size_for, evaluate_points, make_evaluator, prepare
from .json_safe import finite_or_none
from .landscape_grid import (
    MAX_RESOLUTION,
    _axis,
    _axis_indices,
    _parse_resolution,
    _parse_span,
    _refinement_levels,
    _resume_arrays,
    _row_batches,
    grid_levels,
)
from .landscape_line import line
from .landscape_results import Line, Surface
from .point_evaluator import LossFn
from .allocator import keep_freed_memory
from .point_parallel import PointParallel
from .sources.base import unwrap

__all__ = [
    "Surface",
    "Line",
    "plane",
    "line",
    "random_direction",
    "filter_normalized_direction",
    "pca_directions",
    "hessian_directions",
    "grid_levels",
    "evaluate_points",
    "DEFAULT_MEMORY_BUDGET",
    "MAX_RESOLUTION",
]


def plane(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    axes: str = "random",
    resolution: int | tuple[int, int] = 51,
    span: float | tuple[tuple[float, float], tuple[float, float]] | None = None,
    seed: int = 0,
    include_bias: bool = False,
    filter_normalize: bool | None = None,
    batchnorm: str = "keep",
    trajectory: Sequence[Mapping[str, torch.Tensor]] | Any | None = None,
    trajectory_steps: Sequence[int] | None = None,
    directions: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
    hessian_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    models: tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
    markers: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    resume: Any = None,
    on_progress: Callable[[dict], Any] | None = None,
    batch_size: int | None = None,
    min_lines: int = 5,
    device: str | torch.device | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    fast: bool = True,
    threads: int | None = None,
    loss_fn: LossFn | None = None,
    accuracy_fn: LossFn | None = None,
    point_batching: str = "auto",
) -> Surface:
    """A 2-D loss surface around ``model`` on ``data`` (see the module docstring).

    ``axes``: ``"random"``, ``"hessian"``, ``"pca"`` (needs ``trajectory``:
    a list of state dicts or a :class:`analysis.checkpoints.Trajectory`; the
    centre stays ``model``), ``"custom"`` (give ``directions=(d1, d2)``) or
    ``"three_models"`` (give ``models=(B, C)``, optionally ``markers=``).
    ``span`` is a number (``[-span, span]`` on both axes) or
    ``((a_min, a_max), (b_min, b_max))``; defaults: 1.0 for random and
    hessian axes, 1.25x the projected trajectory's extent for pca.
    ``hessian_data`` (default ``data``) is the data whose Hessian gives the
    axes.  ``filter_normalize`` defaults to True for random axes only.
    ``threads``: split batches of points between this many single-threaded
    workers (see :mod:`analysis.point_parallel`); ``None`` evaluates serially
    with torch's own threading.
    ``model`` may be a :class:`analysis.sources.LoadedModel` (its own loss and accuracy are used).
    """
    model, loss_fn, accuracy_fn = unwrap(model, loss_fn, accuracy_fn)
    keep_freed_memory()  # activations reused between points, not page-faulted afresh
    with PointParallel(threads) as parallel:
        return _plane(**locals())


def _plane(
    *, model, data, axes, resolution, span, seed, include_bias, filter_normalize, batchnorm, trajectory, trajectory_steps,
    directions, hessian_data, models, markers, resume, on_progress, batch_size, min_lines, device, memory_budget, fast, threads, loss_fn,
    accuracy_fn, point_batching, parallel: PointParallel,
) -> Surface:
    t0 = time.perf_counter()
    if batchnorm not in ("keep", "recompute"):
        raise ValueError(f"batchnorm must be 'keep' or 'recompute', got {batchnorm!r}")
    nx, ny = _parse_resolution(resolution)
    work, X, y = prepare(model, data, device)
    centre = _params_of(work)
    names = list(centre)
    meta: dict[str, Any] = {"kind": axes, "include_bias": include_bias}
    traj_coords = None
    marker_list = None
    steps_out = None
    default_span = 1.0
    if trajectory is not None and hasattr(trajectory, "states"):
        trajectory_steps = trajectory_steps or trajectory.steps
        trajectory = trajectory.states

    if axes == "random":
        fn = True if filter_normalize is None else filter_normalize
        d1 = random_direction(centre, seed=seed * 2 + 0, filter_normalize=fn, include_bias=include_bias)
        d2 = random_direction(centre, seed=seed * 2 + 1, filter_normalize=fn, include_bias=include_bias)
        meta.update(seed=seed, filter_normalized=fn)
    elif axes == "hessian":
        d1, d2, hmeta = hessian_directions(work, hessian_data or (X, y), seed=seed, loss_fn=loss_fn)
        meta.update(hmeta, seed=seed, filter_normalized=False)
        if filter_normalize:
            d1 = filter_normalized_direction(d1, centre, include_bias=include_bias)
            d2 = filter_normalized_direction(d2, centre, include_bias=include_bias)
            meta["filter_normalized"] = True
    elif axes == "pca":
        if trajectory is None:
            raise ValueError("axes='pca' needs trajectory= (a list of state dicts or a Trajectory)")
        states = [_as_param_dict(s, names) for s in trajectory]
        d1, d2, ratio, traj_coords = pca_directions(states, centre, include_bias=include_bias)
        meta.update(explained_variance_ratio=[float(r) for r in ratio], filter_normalized=False)
        extent = float(np.abs(traj_coords).max()) if len(traj_coords) else 1.0
        default_span = 1.25 * extent if extent > 0 else 1.0
        steps_out = list(trajectory_steps) if trajectory_steps is not None else list(range(len(states)))
    elif axes == "custom":
        if directions is None:
            raise ValueError("axes='custom' needs directions=(d1, d2)")
        d1, d2 = ({n: d[n].to(centre[n]) for n in names} for d in directions)
    elif axes == "three_models":
        from . import three_model_plane as three

        if models is None or len(models) != 2:
            raise ValueError("axes='three_models' needs models=(B, C): the plane's other two corners")
        b_state, c_state = (m.state_dict() if isinstance(m, nn.Module) else m for m in models)
        d1, d2 = three.three_model_directions(centre, b_state, c_state, names)
        marker_states = {"A": centre, "B": b_state, "C": c_state}
        marker_states.update({k: (v.state_dict() if isinstance(v, nn.Module) else v) for k, v in (markers or {}).items()})
        marker_list = three.project_markers(centre, d1, d2, marker_states, names)
        if span is None:
            span = three.default_span(marker_list)
        meta.update(filter_normalized=False)
    else:
        raise ValueError(f"axes must be 'random', 'hessian', 'pca', 'custom' or 'three_models', got {axes!r}")
    d1 = {n: d1[n].to(centre[n]) for n in names}
    d2 = {n: d2[n].to(centre[n]) for n in names}
    meta["norms"] = [float(_flat(d1, names).norm()), float(_flat(d2, names).norm())]
    meta["centre_norm"] = float(_flat(centre, names).norm())
    if trajectory is not None and traj_coords is None:
        # project a trajectory on non-PCA axes by least squares in the (d1, d2) basis
        B = torch.stack([_flat(d1, names), _flat(d2, names)], dim=1)
        c = _flat(centre, names)
        M = torch.stack([_flat(_as_param_dict(s, names), names) - c for s in trajectory])
        sol = torch.linalg.lstsq(B, M.T).solution.T
        traj_coords = sol.numpy()
        steps_out = list(trajectory_steps) if trajectory_steps is not None else list(range(len(trajectory)))

    (a0, a1), (b0, b1) = _parse_span(span, default_span)
    a = _axis(nx, (a0, a1))
    b = _axis(ny, (b0, b1))
    loss, acc, computed = _resume_arrays(resume, (nx, ny))
    scoring = {"loss_fn": loss_fn, "accuracy_fn": accuracy_fn, "point_batching": point_batching}
    ev = make_evaluator(work, centre, [d1, d2], X, y, batchnorm, memory_budget, fast, **scoring)
    parallel.attach(ev)
    bs = (batch_size or batch_size_for(ev)) * parallel.workers
    if acc is None:
        acc = np.full((nx, ny), np.nan) if ev.has_accuracy else None
    levels = _refinement_levels(nx, ny, min_lines)
    nlev = len(levels)
    total = nx * ny
    emit = on_progress or (lambda event: None)
    emit(
        {
            "type": "start",
            "a": a.tolist(),
            "b": b.tolist(),
            "total": total,
            "done": int(computed.sum()),
            "levels": nlev,
            # (row, column) stride per level: what a viewer needs to fill the gaps from the densest complete lattice
            "strides": [[int(sx), int(sy)] for sx, sy in levels],
            "axes": axes,
            "directions": meta,
            "trajectory": None if traj_coords is None else traj_coords.tolist(),
            "trajectory_steps": steps_out,
            "markers": marker_list if axes == "three_models" else None,
        }
    )
    coarse_seconds = None
    with torch.no_grad():
        for level, (sx, sy) in enumerate(levels):
            ii, jj = np.meshgrid(_axis_indices(nx, sx), _axis_indices(ny, sy), indexing="ij")
            todo = [(i, j) for i, j in zip(ii.ravel(), jj.ravel()) if not computed[i, j]]
            for batch in _row_batches(todo, bs):
                coefs = np.array([[a[i], b[j]] for i, j in batch])
                l, ac = parallel.evaluate(coefs)
                points = []
                for k, (i, j) in enumerate(batch):
                    loss[i, j] = l[k]
                    if acc is not None and ac is not None:
                        acc[i, j] = ac[k]
                    computed[i, j] = True
                    points.append(
                        {
                            "i": int(i),
                            "j": int(j),
                            "a": float(a[i]),
                            "b": float(b[j]),
                            "loss": finite_or_none(l[k]),
                            "accuracy": None if ac is None else float(ac[k]),
                        }
                    )
                emit(
                    {
                        "type": "points",
                        "points": points,
                        "done": int(computed.sum()),
                        "total": total,
                        "level": level,
                        "levels": nlev,
                        "stride": [int(sx), int(sy)],
                    }
                )
            if level == 0:
                coarse_seconds = time.perf_counter() - t0

    # centre and trajectory values
    # on the plane's own evaluator: building a second one (replicas, first layer) costs more than the points
    with torch.no_grad():
        centre_loss, centre_acc = parallel.evaluate(np.zeros((1, 2)))
    traj_loss = None
    if traj_coords is not None and len(traj_coords) <= 1000:
        with torch.no_grad():
            traj_loss, _ = parallel.evaluate(np.asarray(traj_coords, dtype=np.float64))
    if axes == "three_models":
        # loss at each marker's in-plane point (its own loss when it lies in the plane)
        with torch.no_grad():
            m_loss, m_acc = parallel.evaluate(np.array([[m["a"], m["b"]] for m in marker_list], dtype=np.float64))
        for k, m in enumerate(marker_list):
            m["loss"] = finite_or_none(float(m_loss[k]))
            m["accuracy"] = None if m_acc is None else float(m_acc[k])
    return Surface(
        a=a,
        b=b,
        loss=loss,
        accuracy=acc,
        computed=computed,
        axes=axes,
        directions=meta,
        trajectory=traj_coords,
        trajectory_steps=steps_out,
        trajectory_loss=traj_loss,
        markers=marker_list if axes == "three_models" else None,
        centre_loss=float(centre_loss[0]),
        centre_accuracy=None if centre_acc is None else float(centre_acc[0]),
        num_points=total,
        seconds=time.perf_counter() - t0,
        coarse_seconds=coarse_seconds,
        evaluator=type(ev).__name__,
        point_threads=parallel.workers,
        d1=d1,
        d2=d2,
    )
