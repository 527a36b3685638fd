"""The order in which a line's points are computed, and that order cut into blocks for separate processes.

:func:`analysis.landscape.line` computes a line coarse to fine: first every
``S``-th point plus the last one (:func:`coarse_indices`, 17 to 33 points, so the
shape of the curve arrives first), then the other points in order, in segments
of :data:`SEGMENT` points (:func:`segments`).  A segment is evaluated in calls
cut from its own start, whatever else is computed, so a point's value depends on
its segment only: the MLP evaluator walks each call as one row
(:mod:`analysis.mlp_evaluator`), and its rounding depends on the call's points.

For many workers the segments after the coarse one are cut into contiguous
blocks of whole segments (:func:`split_segments`); a block is computed with
``line(..., resume={"computed": skip_mask(...)})`` and gives exactly the values
a single worker gives (``tests/analysis/test_line_blocks.py``).
"""

from __future__ import annotations

import numpy as np

from .landscape_grid import _axis_indices, grid_levels

__all__ = ["SEGMENT", "COARSE_POINTS", "coarse_indices", "segments", "split_segments", "skip_mask"]

# Points per segment: the MLP evaluator's batch (whole segments keep its walks as long as before).
SEGMENT = 128
COARSE_POINTS = 17  # at least this many points in the coarse curve (at most about twice as many)


def coarse_indices(steps: int) -> np.ndarray:
    """Indices of the coarse curve: every ``S``-th point and the last one (all points of a short line)."""
    return _axis_indices(steps, grid_levels(steps, COARSE_POINTS)[0])


def segments(steps: int) -> list[np.ndarray]:
    """The line's points in computing order: the coarse curve, then runs of ``SEGMENT`` further points."""
    coarse = coarse_indices(steps)
    rest = np.setdiff1d(np.arange(steps), coarse)
    return [coarse] + [rest[s : s + SEGMENT] for s in range(0, len(rest), SEGMENT)]


def split_segments(steps: int, blocks: int) -> list[list[int]]:
    """The segments after the coarse one (numbers 1..) cut into at most ``blocks`` contiguous runs of about equal points."""
    sizes = [len(part) for part in segments(steps)[1:]]
    total = sum(sizes)
    blocks = max(1, min(int(blocks), len(sizes)))
    out: list[list[int]] = [[] for _ in range(blocks)]
    done = 0
    for number, size in enumerate(sizes, start=1):
        # the block whose share of the points this segment's middle falls in
        out[min(blocks - 1, int((done + size / 2) * blocks / max(1, total)))].append(number)
        done += size
    return [block for block in out if block]


def skip_mask(steps: int, numbers) -> np.ndarray:
    """``computed`` mask for ``line(resume=...)`` that leaves only the points of segments ``numbers``."""
    skip = np.ones(steps, dtype=bool)
    parts = segments(steps)
    for number in numbers:
        skip[parts[number]] = False
    return skip
