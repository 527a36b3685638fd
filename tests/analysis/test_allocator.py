"""The evaluations' allocator setting takes on this machine's glibc (analysis/allocator.py)."""

import sys

import pytest

from analysis import allocator, data, landscape, zoo


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_plane_sets_glibc_to_keep_freed_memory():
    allocator.keep_freed_memory.cache_clear()
    X, y = data.load("digits", "train")
    landscape.plane(zoo.build({"kind": "mlp", "in": 64, "hidden": [8], "out": 10}).eval(), (X[:50], y[:50]), resolution=3)
    info = allocator.keep_freed_memory.cache_info()
    assert info.currsize == 1 and info.hits == 0  # called by the plane, once
    assert allocator.keep_freed_memory() is True  # mallopt accepted both thresholds (a cached answer now)
