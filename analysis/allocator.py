"""Keep freed memory for reuse instead of handing it back to the OS (glibc's malloc).

A forward pass allocates activations of a few megabytes each.  glibc serves blocks
that size with ``mmap`` and unmaps them when freed (or trims the heap top), so the
next point's activations start on fresh pages and fault on first touch: on a GPT-2
point the tanh GELU's first product and ``addmm``'s bias copy into its fresh output
took a quarter of the time.  Raising the mmap and trim thresholds keeps those blocks
in the heap, to be reused by the next point (measured: 43 -> 55 points/s on the
benchmark's GPT-2 plane at two threads).  Evaluations call :func:`keep_freed_memory`
before their points; the cost is that a process keeps up to ``TRIM_THRESHOLD`` of
freed memory.  Without glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 64 * 2**20  # blocks below this come from the heap (glibc's default starts at 128 KiB)
TRIM_THRESHOLD = 256 * 2**20  # free memory at the heap top kept before trimming


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; whether it took."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
