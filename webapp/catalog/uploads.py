"""Uploads are hostile until proven otherwise.

Each upload is streamed to a temporary file under a size cap, validated by the
analysis library (which never unpickles), and only then copied into the catalog.
A rejected upload leaves nothing behind and raises UploadRejected with a message
that says what is wrong.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils.text import slugify

from webapp.catalog.models import Checkpoint, DatasetUpload
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
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UploadRejected(f"architecture spec is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise UploadRejected("architecture spec must be a JSON object such as {\"kind\": \"mlp\", ...}")
    return spec


@transaction.atomic
def checkpoint_upload(*, owner, uploaded, spec: dict | None = None, name: str = "", experiment=None) -> Checkpoint:
    """Validate an uploaded checkpoint and keep it (as safetensors) in `experiment` (default: the owner's sandbox)."""
    from analysis import checkpoints

    suffix = _suffix(uploaded.name, CHECKPOINT_SUFFIXES)
    with tempfile.TemporaryDirectory() as tmp:
        path = spool_upload(uploaded, Path(tmp), suffix)
        try:
            loaded = checkpoints.load(path, spec=spec, max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES)
        except checkpoints.CheckpointError as exc:
            raise UploadRejected(str(exc)) from None
        except Exception as exc:  # the spec itself may be invalid (zoo.SpecError) or the file odd
            raise UploadRejected(f"{type(exc).__name__}: {exc}") from None
        # Keep one format in the catalog: whatever came in is stored as safetensors.
        stored = Path(tmp) / "checkpoint.safetensors"
        checkpoints.save(stored, loaded.model, loaded.spec, meta={**loaded.meta, "uploaded_as": Path(uploaded.name).name})
        return checkpoint_create_from_file(
            experiment=experiment or experiment_sandbox_for(user=owner),
            name=name or Path(uploaded.name).stem[:200],
            path=stored,
            spec=loaded.spec,
            num_parameters=sum(p.numel() for p in loaded.model.parameters()),
            dataset=str(loaded.meta.get("dataset", ""))[:64],
        )


@transaction.atomic
def dataset_upload(*, owner, uploaded, name: str = "") -> DatasetUpload:
    """Validate an uploaded (X, y) file with analysis.data and keep it for the owner."""
    from analysis import data

    suffix = _suffix(uploaded.name, DATASET_SUFFIXES)
    with tempfile.TemporaryDirectory() as tmp:
        path = spool_upload(uploaded, Path(tmp), suffix)
        try:
            X, y = data.load("file", "all", path=str(path), max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES)
        except data.DataError as exc:
            raise UploadRejected(str(exc)) from None
        info = {
            "samples": int(X.shape[0]),
            "input_shape": list(X.shape[1:]),
            "x_dtype": str(X.dtype).replace("torch.", ""),
            "y_dtype": str(y.dtype).replace("torch.", ""),
            "task": "regression" if y.is_floating_point() else "classification",
            "classes": None if y.is_floating_point() else int(y.max()) + 1,
        }
        dataset = DatasetUpload(owner=owner, name=name or Path(uploaded.name).stem[:200], info=info)
        with open(path, "rb") as handle:
            dataset.file.save(f"{slugify(dataset.name) or 'data'}{suffix}", File(handle), save=False)
        dataset.save()
        return dataset
