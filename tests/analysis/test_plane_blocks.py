"""A plane cut into blocks (lattice, then runs of whole rows) is the same plane: same order, same numbers."""

import numpy as np
import pytest
import torch

from analysis import landscape, plane_blocks, zoo


def _order_of_plane(nx, ny):
    """The (i, j) order in which a real plane() evaluates its points."""
    order = []
    model = zoo.build({"kind": "mlp", "in": 3, "hidden": [4], "out": 2})
    X, y = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 3)
    landscape.plane(model, (X, y), resolution=(nx, ny),
                    on_progress=lambda e: order.extend((p["i"], p["j"]) for p in e.get("points", [])))
    return order


@pytest.mark.parametrize("nx, ny", [(2, 2), (5, 5), (9, 13), (17, 17), (21, 21), (51, 51), (3, 40)])
def test_blocks_follow_the_order_of_plane(nx, ny):
    lattice = plane_blocks.coarse_mask(nx, ny)
    expected = [tuple(ij) for ij in np.argwhere(lattice)]
    for _, row in plane_blocks.refinement_rows(nx, ny):
        expected += [(row, j) for j in plane_blocks.row_points(row, nx, ny)]
    assert _order_of_plane(nx, ny) == expected
    assert len(set(expected)) == nx * ny


@pytest.mark.parametrize("blocks", [1, 2, 5, 100])
def test_split_rows_covers_every_row_once_in_order(blocks):
    rows = plane_blocks.refinement_rows(51, 51)
    split = plane_blocks.split_rows(51, 51, blocks)
    assert [r for block in split for r in block] == rows
    assert len(split) == blocks if blocks <= 5 else len(rows) * 0.9 <= len(split) <= len(rows)
    if blocks == 5:  # about equal numbers of points
        sizes = [sum(len(plane_blocks.row_points(row, 51, 51)) for _, row in block) for block in split]
        assert max(sizes) - min(sizes) <= 51


def _blockwise(model, data, resolution, blocks, **kwargs):
    """The plane computed as the lattice plus `blocks` row blocks, each by its own plane() call."""
    nx = ny = resolution
    coarse = landscape.plane(model, data, resolution=resolution, **kwargs,
                             resume={"loss": np.full((nx, ny), np.nan), "computed": ~plane_blocks.coarse_mask(nx, ny)})
    loss, acc = coarse.loss.copy(), None if coarse.accuracy is None else coarse.accuracy.copy()
    span = ((coarse.a[0], coarse.a[-1]), (coarse.b[0], coarse.b[-1]))
    for block in plane_blocks.split_rows(nx, ny, blocks):
        skip = plane_blocks.skip_mask(nx, ny, block)
        part = landscape.plane(model, data, resolution=resolution, axes="custom", directions=(coarse.d1, coarse.d2),
                               span=span, resume={"loss": np.full((nx, ny), np.nan), "computed": skip},
                               batchnorm=kwargs.get("batchnorm", "keep"))
        loss[~skip], acc[~skip] = part.loss[~skip], part.accuracy[~skip]
    return coarse, loss, acc


@pytest.mark.parametrize("spec, resolution", [
    ({"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}, 21),  # the row-walking MLP evaluator
    ({"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4], "out": 10}, 11),  # the generic evaluator
])
def test_blocks_give_the_numbers_of_a_whole_plane(digits, spec, resolution):
    torch.manual_seed(0)
    model = zoo.build(spec)
    X, y = digits[1]
    X = X[:200] if spec["kind"] == "mlp" else X[:60].reshape(-1, 1, 8, 8)
    data = (X, y[: len(X)])
    whole = landscape.plane(model, data, resolution=resolution, seed=3)
    coarse, loss, acc = _blockwise(model, data, resolution, 3, seed=3)
    assert np.array_equal(loss, whole.loss) and np.array_equal(acc, whole.accuracy)
    assert np.array_equal(coarse.a, whole.a) and coarse.centre_loss == whole.centre_loss
