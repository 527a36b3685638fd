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
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils.text import slugify

from webapp.catalog.models import Checkpoint, DatasetUpload, ModelSource, Relation
from webapp.catalog.services import checkpoint_create_from_file, experiment_sandbox_for

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".zip", ".onnx")
MODEL_SUFFIXES = (".zip", ".onnx")  # users' own models, through analysis.sources
DATASET_SUFFIXES = (".npz", ".safetensors")


class UploadRejected(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field  # the form field to blame, when not the file itself


def _suffix(name: str, allowed: tuple[str, ...]) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix not in allowed:
        raise UploadRejected(f"file must end in {', '.join(allowed)} (got {Path(name or '').name!r})")
    return suffix


def _spool(uploaded, directory: Path, suffix: str) -> Path:
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


def folder_files_as_zip(files) -> SimpleUploadedFile:
    """The files of a model folder, uploaded one by one, packed as the ``.zip`` a folder upload would be."""
    import io
    import zipfile

    limit = settings.TERRAIN_MAX_UPLOAD_BYTES
    names = [Path(f.name or "").name for f in files]
    if len(set(names)) != len(names) or not all(names):
        raise UploadRejected("the folder's files must have distinct names", field="model_files")
    if sum(f.size or 0 for f in files) > limit:
        raise UploadRejected(f"the files add up to more than the limit of {limit:,} bytes", field="model_files")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, f in zip(names, files):
            with z.open(f"model/{name}", "w") as out:
                for chunk in f.chunks():
                    out.write(chunk)
    return SimpleUploadedFile("model.zip", buf.getvalue())


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


def _refuse_unsafe_names(name: str) -> None:
    from analysis.sources import PT2_MESSAGE

    if Path(name or "").suffix.lower() == ".pt2":
        raise UploadRejected(PT2_MESSAGE.format(name=Path(name).name))


@transaction.atomic
def model_upload(*, owner, uploaded, name: str = "", base: Checkpoint | None = None, head: str = "", num_labels: int | None = None) -> Checkpoint:
    """Validate a user's own model (a Hugging Face or LoRA folder as .zip, or an .onnx) and keep the file as it came."""
    from analysis.sources import SourceError

    from webapp.catalog.model_files import load_path, model_info_of

    suffix = _suffix(uploaded.name, MODEL_SUFFIXES)
    with tempfile.TemporaryDirectory() as tmp:
        path = _spool(uploaded, Path(tmp), suffix)
        info = {k: v for k, v in (("head", head or None), ("num_labels", num_labels)) if v is not None}
        base_path = Path(base.file.path) if base is not None and base.source == ModelSource.HUGGINGFACE else None
        if base is not None and base_path is None:
            raise UploadRejected("the base of a LoRA adapter must be a Hugging Face checkpoint")
        try:
            loaded = load_path(path, Path(tmp), info=info, base_path=base_path)
        except SourceError:
            raise
        except Exception as exc:  # anything else a hostile file provokes is still a refusal, never a 500
            raise UploadRejected(f"{Path(uploaded.name).name}: cannot be loaded ({type(exc).__name__}: {str(exc)[:300]})") from None
        limit = settings.TERRAIN_MAX_MODEL_PARAMETERS
        if loaded.num_parameters > limit:
            raise UploadRejected(f"the model has {loaded.num_parameters:,} parameters, above this server's limit of {limit:,} (TERRAIN_MAX_MODEL_PARAMETERS)")
        source = loaded.provenance["source"]
        model_info = model_info_of(loaded)
        spec = {"source": source, "model_type": model_info.get("model_type"), "architecture": model_info.get("architecture"),
                "head": model_info.get("head")}
        return checkpoint_create_from_file(
            experiment=experiment_sandbox_for(user=owner),
            name=name or Path(uploaded.name).stem[:200],
            path=path,
            spec=spec,
            num_parameters=loaded.num_parameters,
            source=source,
            model_info=model_info,
            parent=base if source == ModelSource.LORA else None,
            relation=Relation.ADAPTER if source == ModelSource.LORA else "",
            suffix=suffix,
        )


@transaction.atomic
def checkpoint_upload(*, owner, uploaded, spec: dict | None = None, name: str = "", **model_options) -> Checkpoint:
    """Validate an uploaded checkpoint and keep it (as safetensors) in the owner's sandbox.

    A ``.zip`` (a model folder) or an ``.onnx`` goes to :func:`model_upload` with ``model_options``.
    """
    from analysis import checkpoints
    from analysis.sources import SourceError

    _refuse_unsafe_names(uploaded.name)
    suffix = _suffix(uploaded.name, CHECKPOINT_SUFFIXES)
    if suffix in MODEL_SUFFIXES:
        try:
            return model_upload(owner=owner, uploaded=uploaded, name=name, **model_options)
        except SourceError as exc:
            raise UploadRejected(str(exc), field=exc.field if exc.field != "checkpoint" else None) from None
    with tempfile.TemporaryDirectory() as tmp:
        path = _spool(uploaded, Path(tmp), suffix)
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
            experiment=experiment_sandbox_for(user=owner),
            name=name or Path(uploaded.name).stem[:200],
            path=stored,
            spec=loaded.spec,
            num_parameters=sum(p.numel() for p in loaded.model.parameters()),
            dataset=str(loaded.meta.get("dataset", ""))[:64],
        )


@transaction.atomic
def dataset_upload(*, owner, uploaded, name: str = "") -> DatasetUpload:
    """Validate an uploaded (X, y) file with analysis.data (or token ids with analysis.sources.data) and keep it."""
    suffix = _suffix(uploaded.name, DATASET_SUFFIXES)
    with tempfile.TemporaryDirectory() as tmp:
        path = _spool(uploaded, Path(tmp), suffix)
        info = _token_info(path) if _holds_token_ids(path) else _array_info(path)
        dataset = DatasetUpload(owner=owner, name=name or Path(uploaded.name).stem[:200], info=info)
        with open(path, "rb") as handle:
            dataset.file.save(f"{slugify(dataset.name) or 'data'}{suffix}", File(handle), save=False)
        dataset.save()
        return dataset


def _holds_token_ids(path: Path) -> bool:
    """Token data for a user's language model: arrays input_ids (+ attention_mask, labels)."""
    import numpy as np

    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return "input_ids" in z.files
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            return "input_ids" in f.keys()
    except Exception:  # unreadable files are reported by the array check that follows
        return False


def _token_info(path: Path) -> dict:
    from analysis.sources import SourceError
    from analysis.sources import data as source_data

    try:
        X, y = source_data.load_tokens(path)
    except SourceError as exc:
        raise UploadRejected(str(exc)) from None
    return {"format": "tokens", "samples": int(X.shape[0]), "input_shape": [int(X.shape[1])], "x_dtype": "int64",
            "y_dtype": "int64", "task": "tokens", "classes": None, "seq_len": int(X.shape[1])}


def _array_info(path: Path) -> dict:
    from analysis import data

    try:
        X, y = data.load("file", "all", path=str(path), max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES)
    except data.DataError as exc:
        raise UploadRejected(str(exc)) from None
    return {
        "samples": int(X.shape[0]),
        "input_shape": list(X.shape[1:]),
        "x_dtype": str(X.dtype).replace("torch.", ""),
        "y_dtype": str(y.dtype).replace("torch.", ""),
        "task": "regression" if y.is_floating_point() else "classification",
        "classes": None if y.is_floating_point() else int(y.max()) + 1,
    }
