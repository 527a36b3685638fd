"""One plane split into blocks that separate processes compute: the coarse lattice, then blocks of whole rows.

:func:`analysis.landscape.plane` computes a plane coarse to fine: a lattice of
every ``S``-th line first, then whole rows at row strides ``S/2, ..., 1``.  Here
the same order is cut into pieces: :func:`coarse_mask` is the lattice (the
first block, so the coarse surface still arrives first) and :func:`split_rows`
cuts the refinement rows into contiguous blocks.  A block is computed with
``plane(..., resume=skip_mask(...))``: every point outside the block counts as
done, so ``plane`` evaluates exactly the block's points, level by level.

Why the numbers equal a whole plane's: ``plane`` batches each grid row the same
way whichever other rows it skips (a row is split only when it alone is longer
than a batch, always from its first point), and evaluators treat each row of a
batch on its own (the MLP evaluator walks rows; the others evaluate points).
``tests/analysis/test_plane_blocks.py`` checks both the order and the numbers.
"""

from __future__ import annotations

import numpy as np

from .landscape import grid_levels

__all__ = ["coarse_mask", "refinement_rows", "row_points", "split_rows", "skip_mask"]


def _lines(n: int, stride: int) -> list[int]:
    """Every ``stride``-th index of an ``n``-point axis, plus the last one (as ``plane`` draws them)."""
    return sorted(set(range(0, n, stride)) | {n - 1})


def _row_strides(nx: int, ny: int, min_lines: int) -> list[int]:
    """Row stride of each level after the lattice; the last level covers every row."""
    rows, cols = grid_levels(nx, min_lines), grid_levels(ny, min_lines)
    last = (rows[-1], 1) if len(rows) > 1 else (rows[0], cols[0])
    return rows[1:] + ([1] if last != (1, 1) else [])


def coarse_mask(nx: int, ny: int, min_lines: int = 5) -> np.ndarray:
    """Boolean (nx, ny) mask of the coarse lattice: the points of ``plane``'s first level."""
    rows, cols = grid_levels(nx, min_lines), grid_levels(ny, min_lines)
    mask = np.zeros((nx, ny), dtype=bool)
    mask[np.ix_(_lines(nx, rows[0]), _lines(ny, cols[0]))] = True
    return mask


def refinement_rows(nx: int, ny: int, min_lines: int = 5) -> list[tuple[int, int]]:
    """``(level, row)`` of every row still to compute after the lattice, in ``plane``'s order."""
    seen: set[int] = set()
    out = []
    for level, stride in enumerate(_row_strides(nx, ny, min_lines), start=1):
        for row in _lines(nx, stride):
            if row not in seen:
                seen.add(row)
                out.append((level, row))
    return out


def row_points(row: int, nx: int, ny: int, min_lines: int = 5) -> list[int]:
    """Columns of ``row`` that the refinement computes (the row minus its lattice points)."""
    lattice = coarse_mask(nx, ny, min_lines)[row]
    return [j for j in range(ny) if not lattice[j]]


def split_rows(nx: int, ny: int, blocks: int, min_lines: int = 5) -> list[list[tuple[int, int]]]:
    """The refinement rows cut into at most ``blocks`` contiguous runs of about equal point counts."""
    rows = refinement_rows(nx, ny, min_lines)
    lattice = coarse_mask(nx, ny, min_lines)
    sizes = [ny - int(lattice[row].sum()) for _, row in rows]
    total = sum(sizes)
    blocks = max(1, min(int(blocks), len(rows)))
    out: list[list[tuple[int, int]]] = [[] for _ in range(blocks)]
    done = 0
    for (level, row), size in zip(rows, sizes):
        # the block whose share of the points this row's middle falls in
        k = min(blocks - 1, int((done + size / 2) * blocks / max(1, total)))
        out[k].append((level, row))
        done += size
    return [block for block in out if block]


def skip_mask(nx: int, ny: int, rows, min_lines: int = 5) -> np.ndarray:
    """``computed`` mask for ``plane(resume=...)`` that leaves only the points of ``rows`` to evaluate."""
    skip = np.ones((nx, ny), dtype=bool)
    lattice = coarse_mask(nx, ny, min_lines)
    for _, row in rows:
        skip[row] = lattice[row]
    return skip
