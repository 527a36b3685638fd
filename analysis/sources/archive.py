"""Safe extraction of an uploaded model folder packed as a ``.zip``.

Refused before anything is written: absolute paths, ``..`` components,
symlinks, more than ``max_entries`` members, a declared total above
``max_bytes`` or a member that claims a compression ratio above
``max_ratio`` (a zip bomb).  The declared sizes can lie, so members are
copied in chunks and extraction stops the moment the real bytes exceed the
declared size or the limit; a refused archive leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .base import SourceError

__all__ = ["extract_model_zip", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 4 * 2**30
MAX_ENTRIES = 10_000
MAX_RATIO = 200  # safetensors and JSON compress far less than this
CHUNK = 1 << 20


def _member_path(info: zipfile.ZipInfo, name: str) -> PurePosixPath:
    raw = info.filename
    p = PurePosixPath(raw.replace("\\", "/"))
    if p.is_absolute() or raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise SourceError(f"{name}: member {raw!r} has an absolute path")
    if any(part == ".." for part in p.parts):
        raise SourceError(f"{name}: member {raw!r} points outside the archive (..)")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise SourceError(f"{name}: member {raw!r} is a symbolic link")
    return p


def extract_model_zip(
    path: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = MAX_ENTRIES,
    max_ratio: int = MAX_RATIO,
) -> Path:
    """Extract ``path`` into a new folder under ``dest`` and return the model folder inside
    (the archive's single top-level folder, or the extraction folder itself)."""
    path = Path(path)
    name = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{name}: corrupt or not a zip archive ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise SourceError(f"{name}: {len(infos)} members, more than the limit of {max_entries}")
        total = 0
        members = []
        for info in infos:
            p = _member_path(info, name)
            if info.is_dir() or not p.parts or p.parts[0] == "__MACOSX":
                continue
            total += info.file_size
            if info.file_size > max(info.compress_size, 1) * max_ratio:
                raise SourceError(f"{name}: member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x (a zip bomb?)")
            members.append((info, p))
        if total > max_bytes:
            raise SourceError(f"{name}: expands to {total:,} bytes, above the limit of {max_bytes:,}")
        base = Path(dest) if dest is not None else path.parent
        base.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix=path.stem[:40] + "-", dir=base))
        written = 0
        try:
            for info, p in members:
                target = out.joinpath(*p.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                size = 0
                with zf.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        size += len(chunk)
                        written += len(chunk)
                        if size > info.file_size or written > max_bytes:
                            raise SourceError(f"{name}: member {info.filename!r} holds more bytes than it declares (a zip bomb?)")
                        dst.write(chunk)
        except (SourceError, zipfile.BadZipFile, OSError, EOFError) as e:
            shutil.rmtree(out, ignore_errors=True)
            if isinstance(e, SourceError):
                raise
            raise SourceError(f"{name}: corrupt archive ({e})") from None
    entries = [e for e in out.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return out
