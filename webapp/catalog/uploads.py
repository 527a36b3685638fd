"""Uploads are hostile until proven otherwise.

Each upload is streamed to a temporary file under a size cap and validated by the
analysis library (which never unpickles, and refuses archives that declare more than
TERRAIN_MAX_UNPACKED_BYTES before inflating them).  Validation stores nothing: a
PendingUpload waits in its temporary directory until a valid submission stores it.
A rejected upload raises UploadRejected with a message that says what is wrong.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils.text import slugify

from webapp.bounded_json import JsonRejected, parse_json
from webapp.catalog.models import Checkpoint, DatasetUpload, new_slug
from webapp.catalog.services import checkpoint_create_from_file, experiment_sandbox_for

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
DATASET_SUFFIXES = (".npz", ".safetensors")


class UploadRejected(ValueError):
    pass


def _suffix(name: str, allowed: tuple[str, ...]) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix not in allowed:
        raise UploadRejected(f"file must end in {', '.join(allowed)} (got {Path(name or '').name!r})")
    return suffix


def spool_upload(uploaded, directory: Path, suffix: str) -> Path:
    limit = settings.TERRAIN_MAX_UPLOAD_BYTES
    if uploaded.size is not None and uploaded.size > limit:
        raise UploadRejected(f"file is {uploaded.size:,} bytes; the limit is {limit:,}")
    path = directory / f"upload{suffix}"
    written = 0
    with open(path, "wb") as out:
        for chunk in uploaded.chunks():
            written += len(chunk)
            if written > limit:
                raise UploadRejected(f"file is over the limit of {limit:,} bytes")
            out.write(chunk)
    if written == 0:
        raise UploadRejected("file is empty")
    return path


def parse_spec_json(text: str) -> dict | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        spec = parse_json(text, field="spec_json")
    except JsonRejected as exc:
        raise UploadRejected(f"architecture spec: {exc.message}") from None
    if not isinstance(spec, dict):
        raise UploadRejected("architecture spec must be a JSON object such as {\"kind\": \"mlp\", ...}")
    return spec


class PendingUpload:
    """A validated upload still in its temporary directory.  Nothing is stored until
    `store(owner=...)`, which a valid submission calls inside its transaction; its slug is
    chosen now so job parameters can name it before it exists."""

    def __init__(self, uploaded, suffixes: tuple[str, ...]):
        self.suffix = _suffix(uploaded.name, suffixes)
        self.name = Path(uploaded.name).stem[:200]
        self.slug = new_slug()
        self._tmp = tempfile.TemporaryDirectory(prefix="terrain-upload-")
        self.path = spool_upload(uploaded, Path(self._tmp.name), self.suffix)

    def close(self) -> None:
        self._tmp.cleanup()

    def store(self, *, owner):
        raise NotImplementedError


class PendingCheckpoint(PendingUpload):
    """Reads like a Checkpoint (slug, name, spec, num_parameters, dataset) for form checks."""

    trajectory_file = None

    experiment = None  # where store() files it: the owner's sandbox unless set

    def __init__(self, uploaded, spec: dict | None):
        from analysis import checkpoints

        super().__init__(uploaded, CHECKPOINT_SUFFIXES)
        try:
            loaded = checkpoints.load(self.path, spec=spec, max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES)
        except checkpoints.CheckpointError as exc:
            raise UploadRejected(str(exc)) from None
        except Exception as exc:  # the spec itself may be invalid (zoo.SpecError) or the file odd
            raise UploadRejected(f"{type(exc).__name__}: {exc}") from None
        # Keep one format in the catalog: whatever came in is stored as safetensors.
        self.stored_path = Path(self._tmp.name) / "checkpoint.safetensors"
        checkpoints.save(self.stored_path, loaded.model, loaded.spec, meta={**loaded.meta, "uploaded_as": Path(uploaded.name).name})
        self.spec = loaded.spec
        self.num_parameters = sum(p.numel() for p in loaded.model.parameters())
        self.dataset = str(loaded.meta.get("dataset", ""))[:64]

    def store(self, *, owner) -> Checkpoint:
        return checkpoint_create_from_file(
            experiment=self.experiment or experiment_sandbox_for(user=owner), name=self.name, path=self.stored_path, spec=self.spec,
            num_parameters=self.num_parameters, dataset=self.dataset, slug=self.slug,
        )


class PendingDataset(PendingUpload):
    def __init__(self, uploaded):
        from analysis import data

        super().__init__(uploaded, DATASET_SUFFIXES)
        limits = {"max_bytes": settings.TERRAIN_MAX_UPLOAD_BYTES, "max_array_bytes": settings.TERRAIN_MAX_UNPACKED_BYTES}
        try:
            X, y = data.load("file", "all", path=str(self.path), **limits)
            self.description = data.describe("file", path=str(self.path), **limits)
        except data.DataError as exc:
            raise UploadRejected(str(exc)) from None
        self.info = {
            "samples": int(X.shape[0]),
            "input_shape": list(X.shape[1:]),
            "x_dtype": str(X.dtype).replace("torch.", ""),
            "y_dtype": str(y.dtype).replace("torch.", ""),
            "task": "regression" if y.is_floating_point() else "classification",
            "classes": None if y.is_floating_point() else int(y.max()) + 1,
        }

    def store(self, *, owner) -> DatasetUpload:
        dataset = DatasetUpload(slug=self.slug, owner=owner, name=self.name, info=self.info)
        with open(self.path, "rb") as handle:
            dataset.file.save(f"{slugify(self.name) or 'data'}{self.suffix}", File(handle), save=False)
        dataset.save()
        return dataset


def uploads_store(*, uploads, owner) -> list:
    """Store validated uploads (inside the caller's transaction); on failure remove the files
    already written, so a rolled-back submission leaves nothing on disk either."""
    stored = []
    try:
        for upload in uploads:
            stored.append(upload.store(owner=owner))
    except BaseException:
        for obj in stored:
            obj.file.delete(save=False)
            if getattr(obj, "trajectory_file", None):
                obj.trajectory_file.delete(save=False)
        raise
    finally:
        for upload in uploads:
            upload.close()
    return stored


@transaction.atomic
def checkpoint_upload(*, owner, uploaded, spec: dict | None = None, name: str = "", experiment=None) -> Checkpoint:
    """Validate an uploaded checkpoint and keep it (as safetensors) in `experiment` (default: the owner's sandbox)."""
    pending = PendingCheckpoint(uploaded, spec)
    pending.name = name or pending.name
    pending.experiment = experiment
    return uploads_store(uploads=[pending], owner=owner)[0]


@transaction.atomic
def dataset_upload(*, owner, uploaded, name: str = "") -> DatasetUpload:
    """Validate an uploaded (X, y) file with analysis.data and keep it for the owner."""
    pending = PendingDataset(uploaded)
    pending.name = name or pending.name
    return uploads_store(uploads=[pending], owner=owner)[0]
