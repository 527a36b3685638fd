"""A line cut into blocks (the coarse curve, then runs of whole segments) is the same line: same order, same numbers."""

import numpy as np
import pytest
import torch

from analysis import landscape, line_blocks, zoo


@pytest.mark.parametrize("steps", [2, 3, 17, 33, 34, 101, 1001])
def test_segments_follow_the_order_of_line(steps):
    model = zoo.build({"kind": "mlp", "in": 3, "hidden": [4], "out": 2})
    X, y = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 3)
    order = []
    landscape.line(model, (X, y), steps=steps, on_progress=lambda e: order.extend(p["k"] for p in e["points"]))
    parts = line_blocks.segments(steps)
    assert order == [int(k) for part in parts for k in part] and sorted(order) == list(range(steps))
    coarse = parts[0]
    assert coarse[0] == 0 and coarse[-1] == steps - 1 and min(steps, 17) <= len(coarse) <= 33
    assert all(len(part) == line_blocks.SEGMENT for part in parts[1:-1])


def test_split_segments_covers_every_segment_once_in_order():
    numbers = list(range(1, len(line_blocks.segments(1001))))  # 968 points after the coarse curve: 8 segments
    assert len(numbers) == 8
    for blocks in (1, 3, 8, 20):
        split = line_blocks.split_segments(1001, blocks)
        assert [n for block in split for n in block] == numbers and len(split) == min(blocks, 8)
    assert line_blocks.split_segments(20, 4) == []  # all coarse: nothing to split
    skip = line_blocks.skip_mask(1001, [2, 3])
    assert (~skip).sum() == 2 * line_blocks.SEGMENT


@pytest.mark.parametrize("spec, steps, threads", [
    ({"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}, 700, None),  # the row-walking MLP evaluator
    ({"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}, 700, 2),
    ({"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4], "out": 10}, 300, None),  # the generic evaluator
])
def test_blocks_give_the_numbers_of_a_whole_line(digits, spec, steps, threads):
    torch.manual_seed(0)
    model = zoo.build(spec)
    X, y = digits[1]
    X = X[:200] if spec["kind"] == "mlp" else X[:40].reshape(-1, 1, 8, 8)
    data = (X, y[: len(X)])
    whole = landscape.line(model, data, steps=steps, seed=3, threads=threads)
    loss, acc = np.full(steps, np.nan), np.full(steps, np.nan)
    coarse = line_blocks.segments(steps)[0]
    for numbers in [[0]] + line_blocks.split_segments(steps, 3):
        skip = line_blocks.skip_mask(steps, numbers)
        part = landscape.line(model, data, steps=steps, seed=3, threads=threads, resume={"computed": skip})
        assert np.isnan(part.loss[skip]).all()
        loss[~skip], acc[~skip] = part.loss[~skip], part.accuracy[~skip]
    assert len(coarse) < steps and np.array_equal(loss, whole.loss) and np.array_equal(acc, whole.accuracy)
