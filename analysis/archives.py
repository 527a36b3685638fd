"""Zip archives (``.npz`` data, ``torch.save`` checkpoints) checked before anything is inflated.

A file cap counts compressed bytes: 1 MB of deflated zeros can declare a gigabyte.  These
checks read only the zip directory and, for ``.npz``, each member's ``.npy`` header (a few
hundred bytes, the only part decompressed), and refuse when what the archive declares
exceeds a limit.  Loaders then read at most what was declared: ``zipfile`` stops at a
member's declared size and NumPy allocates the declared shape.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

# Deflate tops out near 1032:1; honest numeric data stays well under this.
DEFAULT_MAX_RATIO = 200
# Members smaller than this are not judged by their ratio (tiny arrays compress oddly).
_RATIO_FLOOR_BYTES = 1 << 20


class ArchiveRejected(ValueError):
    """The archive declares more than the limits allow, or is not a readable zip."""


def check_zip(path: str | Path, *, max_unpacked_bytes: int | None, max_ratio: float = DEFAULT_MAX_RATIO) -> int:
    """Refuse an archive whose members declare more than `max_unpacked_bytes` in all, or one
    member inflating more than `max_ratio` times.  Returns the declared total."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveRejected(f"corrupt or not a zip archive: {exc}") from None
    total = sum(m.file_size for m in members)
    if max_unpacked_bytes is not None and total > max_unpacked_bytes:
        raise ArchiveRejected(f"archive unpacks to {total:,} bytes, more than the limit of {max_unpacked_bytes:,}")
    for m in members:
        if m.file_size > _RATIO_FLOOR_BYTES and m.file_size > max_ratio * max(1, m.compress_size):
            raise ArchiveRejected(
                f"member {m.filename!r} inflates {m.file_size / max(1, m.compress_size):,.0f} times "
                f"({m.compress_size:,} -> {m.file_size:,} bytes): refused as a decompression bomb"
            )
    return total


def _npy_header(handle) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return shape, dtype


def check_npz(path: str | Path, *, max_array_bytes: int | None, max_ratio: float = DEFAULT_MAX_RATIO) -> dict[str, tuple]:
    """Check the zip, then every ``.npy`` member's declared shape and dtype, without loading
    any array.  Returns {array name: (shape, dtype)}."""
    check_zip(path, max_unpacked_bytes=None if max_array_bytes is None else max_array_bytes + (1 << 20), max_ratio=max_ratio)
    declared: dict[str, tuple] = {}
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[: -len(".npy")]
            try:
                with archive.open(info) as handle:  # inflates only the header's bytes
                    shape, dtype = _npy_header(handle)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise ArchiveRejected(f"array {name!r}: unreadable .npy header ({exc})") from None
            if dtype.hasobject:
                raise ArchiveRejected(f"array {name!r} holds pickled Python objects; only numeric arrays are accepted")
            size = math.prod(shape) * dtype.itemsize
            total += size
            if max_array_bytes is not None and total > max_array_bytes:
                raise ArchiveRejected(
                    f"array {name!r} declares shape {tuple(shape)} of {dtype} ({size:,} bytes); the arrays may "
                    f"hold at most {max_array_bytes:,} bytes in all"
                )
            declared[name] = (tuple(shape), dtype)
    return declared
