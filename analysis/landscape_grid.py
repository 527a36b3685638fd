"""Grid axes and the coarse-to-fine order in which a plane's points are computed.

A plane is computed in levels: first every ``S``-th grid line (plus the last one) in
both axes, so the coarse grid is a subset of the final grid, then whole rows (fixed
``a``) at row strides ``S/2, S/4, ..., 1``."""

from __future__ import annotations

import itertools
import math

import numpy as np

MAX_RESOLUTION = 501


def grid_levels(n: int, min_lines: int = 5) -> list[int]:
    """Strides for coarse-to-fine refinement of an ``n``-point axis: ``[S, S/2, ..., 1]``.

    ``S`` is the largest power of two leaving at least ``min_lines - 1``
    intervals, so the coarse level has about ``min_lines`` to ``2*min_lines``
    lines per axis.
    """
    s = 1
    while (n - 1) // (2 * s) >= min_lines - 1:
        s *= 2
    levels = []
    while s >= 1:
        levels.append(s)
        s //= 2
    return levels


def _axis_indices(n: int, stride: int) -> np.ndarray:
    idx = set(range(0, n, stride))
    idx.add(n - 1)
    return np.array(sorted(idx))


def _axis(resolution: int, span: tuple[float, float]) -> np.ndarray:
    return np.linspace(span[0], span[1], resolution)


def _parse_span(span, default: float) -> tuple[tuple[float, float], tuple[float, float]]:
    if span is None:
        span = default
    if isinstance(span, (int, float)):
        s = float(span)
        if not math.isfinite(s) or s <= 0:
            raise ValueError(f"span must be a positive number, got {span!r}")
        return (-s, s), (-s, s)
    try:
        (a0, a1), (b0, b1) = span
        out = (float(a0), float(a1)), (float(b0), float(b1))
    except (TypeError, ValueError):
        raise ValueError(f"span must be a number or ((a_min, a_max), (b_min, b_max)), got {span!r}") from None
    for lo, hi in out:
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"span ranges must be finite with min < max, got {span!r}")
    return out


def _parse_resolution(resolution) -> tuple[int, int]:
    if isinstance(resolution, int):
        nx = ny = resolution
    else:
        nx, ny = (int(r) for r in resolution)
    for r in (nx, ny):
        if not 2 <= r <= MAX_RESOLUTION:
            raise ValueError(f"resolution must be between 2 and {MAX_RESOLUTION}, got {resolution!r}")
    return nx, ny


def _refinement_levels(nx: int, ny: int, min_lines: int) -> list[tuple[int, int]]:
    """(row stride, column stride) per level: a coarse lattice, then ever denser sets of *whole rows*.

    Whole rows let the MLP evaluator walk each row once (its cost per row barely
    depends on how many of the row's points are evaluated).
    """
    rows, cols = grid_levels(nx, min_lines), grid_levels(ny, min_lines)
    levels = [(rows[0], cols[0])] + [(s, 1) for s in rows[1:]]
    if levels[-1] != (1, 1):
        levels.append((1, 1))
    return levels


def _row_batches(todo: list[tuple[int, int]], size: int):
    """Consecutive batches of at most ``size`` points that split a grid row only when it alone is longer."""
    batch: list[tuple[int, int]] = []
    for _, row in itertools.groupby(todo, key=lambda ij: ij[0]):
        row = list(row)
        if batch and len(batch) + len(row) > size:
            yield batch
            batch = []
        while len(row) > size:
            yield row[:size]
            row = row[size:]
        batch.extend(row)
    if batch:
        yield batch


def _resume_arrays(resume, shape) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    if resume is None:
        return np.full(shape, np.nan), None, np.zeros(shape, dtype=bool)
    if hasattr(resume, "computed"):  # a Surface
        loss, acc, mask = resume.loss, resume.accuracy, resume.computed
    else:
        loss, acc, mask = resume.get("loss"), resume.get("accuracy"), resume.get("computed")
    loss = np.array([[np.nan if v is None else v for v in row] for row in loss], dtype=np.float64)
    if mask is None:
        mask = ~np.isnan(loss)
    mask = np.asarray(mask, dtype=bool)
    if loss.shape != shape or mask.shape != shape:
        raise ValueError(f"resume arrays have shape {loss.shape}, expected {shape}")
    if acc is not None:
        acc = np.array([[np.nan if v is None else v for v in row] for row in acc], dtype=np.float64)
    return loss.copy(), acc, mask.copy()
