"""Stored files as local paths: the cache a worker on another machine keeps, by content hash."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage
from django.db.models.fields.files import FieldFile

from webapp import files


class _Field:  # the two attributes FieldFile needs from its model field
    def __init__(self, storage):
        self.storage = storage


def stored(storage, name, payload: bytes) -> FieldFile:
    saved = storage.save(name, ContentFile(payload))
    return FieldFile(instance=None, field=_Field(storage), name=saved)


@pytest.fixture
def cache(settings, tmp_path):
    settings.TERRAIN_FILE_CACHE = tmp_path / "cache"
    settings.TERRAIN_FILE_CACHE_BYTES = 10_000
    return settings.TERRAIN_FILE_CACHE


def test_remote_file_is_copied_once_and_named_by_its_hash(cache):
    storage = InMemoryStorage()  # like an object store, it has no local path
    payload = b"weights" * 100
    sha = hashlib.sha256(payload).hexdigest()
    field = stored(storage, "checkpoints/a.safetensors", payload)
    path = files.local_path(field, sha256=sha)
    assert path == cache / sha[:2] / f"{sha}.safetensors" and path.read_bytes() == payload
    storage.delete(field.name)  # a second call must not go back to storage
    assert files.local_path(field, sha256=sha) == path


def test_bytes_that_do_not_match_the_catalog_hash_are_refused_and_not_cached(cache):
    field = stored(InMemoryStorage(), "checkpoints/b.safetensors", b"tampered")
    with pytest.raises(files.StoredFileCorrupt):
        files.local_path(field, sha256=hashlib.sha256(b"original").hexdigest())
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_cache_evicts_least_recently_used_copies_over_its_budget(cache):
    storage = InMemoryStorage()
    paths = [files.local_path(stored(storage, f"f{k}.bin", bytes([k]) * 4000)) for k in range(3)]
    assert not paths[0].exists() and paths[1].exists() and paths[2].exists()


def test_local_storage_gives_the_stored_file_itself(settings, tmp_path):
    from django.core.files.storage import FileSystemStorage

    field = stored(FileSystemStorage(location=tmp_path), "c.bin", b"x")
    assert files.local_path(field) == tmp_path / "c.bin"
    assert files.download_url(field, filename="c.bin") is None
