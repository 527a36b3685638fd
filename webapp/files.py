"""Stored files as local paths, on whichever machine asks.

Every file Terrain keeps goes through Django's storage API (the local folder by
default, an S3-compatible object store when ``TERRAIN_S3_BUCKET`` is set). The
analysis library opens files by path, so a worker asks here: with the local
folder that is the stored file itself; with an object store the file is streamed
once into ``TERRAIN_FILE_CACHE``, named by its SHA-256, checked against the hash
the catalog recorded, and reused read-only by every later job on that machine.
Stored files are immutable (names are never overwritten), so a cached copy never
goes stale.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage

CHUNK = 1 << 20


class StoredFileCorrupt(RuntimeError):
    """The bytes in storage do not have the hash the catalog recorded for them."""


def is_local(storage: Storage) -> bool:
    """Files on this machine's disk (the local folder), as opposed to an object store."""
    return isinstance(storage, FileSystemStorage)


def local_path(field_file, *, sha256: str = "") -> Path:
    """A local path holding the stored file's bytes (see the module docstring)."""
    storage, name = field_file.storage, field_file.name
    if is_local(storage):
        return Path(storage.path(name))
    key = sha256 or hashlib.sha256(f"{type(storage).__name__}:{name}".encode()).hexdigest()
    target = Path(settings.TERRAIN_FILE_CACHE) / key[:2] / f"{key}{Path(name).suffix}"
    if target.exists():
        os.utime(target)  # most recently used: evicted last
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, storage.open(name, "rb") as src:
            for block in iter(lambda: src.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
        if sha256 and digest.hexdigest() != sha256:
            raise StoredFileCorrupt(f"{name}: stored bytes hash to {digest.hexdigest()}, the catalog says {sha256}")
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _evict(Path(settings.TERRAIN_FILE_CACHE), keep=target)
    return target


def _evict(root: Path, *, keep: Path) -> None:
    """Drop the least recently used copies while the cache is over its byte budget."""
    files = [p for p in root.glob("*/*") if p.is_file() and not p.name.startswith(".part-")]
    total = sum(p.stat().st_size for p in files)
    budget = settings.TERRAIN_FILE_CACHE_BYTES
    for path in sorted(files, key=lambda p: p.stat().st_mtime):
        if total <= budget:
            break
        if path == keep:
            continue
        total -= path.stat().st_size
        path.unlink(missing_ok=True)


def download_url(field_file, *, filename: str) -> str | None:
    """A short-lived signed URL for the stored file, or None where the storage has none (local folder).

    Called only after the caller checked that the user may see the file; the URL
    expires after ``TERRAIN_S3_SIGNED_URL_SECONDS``.
    """
    storage = field_file.storage
    if is_local(storage):
        return None
    safe = filename.replace('"', "")
    return _signer(storage).url(field_file.name, parameters={"ResponseContentDisposition": f'attachment; filename="{safe}"'})


def _signer(storage: Storage) -> Storage:
    """The storage that signs browser links: the same bucket under the address browsers reach
    (``TERRAIN_S3_PUBLIC_ENDPOINT_URL``, e.g. when workers reach MinIO as http://minio:9000)."""
    public = settings.TERRAIN_S3_PUBLIC_ENDPOINT_URL
    if not public:
        return storage
    from storages.backends.s3 import S3Storage

    return S3Storage(**{**settings.STORAGES["default"]["OPTIONS"], "endpoint_url": public})
