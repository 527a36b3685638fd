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
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.db import transaction
from django.utils.text import slugify

from webapp.bounded_json import JsonRejected, parse_json
from webapp.catalog.models import Checkpoint, DatasetUpload, ModelSource, Relation, new_slug
from webapp.catalog.services import checkpoint_create_from_file, experiment_sandbox_for

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".zip", ".onnx")
MODEL_SUFFIXES = (".zip", ".onnx")  # users' own models, through analysis.sources
DATASET_SUFFIXES = (".npz", ".safetensors")
SPEC_FIELD_TITLE = "Architecture spec (JSON)"  # the form field a .pt upload's spec goes in


class UploadRejected(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field  # the form field to blame, when not the file itself


def _suffix(name: str, allowed: tuple[str, ...]) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix not in allowed:
        raise UploadRejected(f"file must end in {', '.join(allowed)} (got {Path(name or '').name!r})")
    return suffix


def megabytes(size: int) -> str:
    """A size as people read file sizes (90.8 MB), in bytes when that would round to nothing."""
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def over_upload_limit(what: str) -> str:
    """`what` ("file is 83.4 MB, above") completed with the limit and the setting that raises it."""
    limit = megabytes(settings.TERRAIN_MAX_UPLOAD_BYTES)
    return f"{what} this server's upload limit of {limit} (the setting TERRAIN_MAX_UPLOAD_BYTES raises it)"


def spool_upload(uploaded, directory: Path, suffix: str) -> Path:
    limit = settings.TERRAIN_MAX_UPLOAD_BYTES
    if uploaded.size is not None and uploaded.size > limit:
        raise UploadRejected(over_upload_limit(f"file is {megabytes(uploaded.size)}, above"))
    path = directory / f"upload{suffix}"
    written = 0
    with open(path, "wb") as out:
        for chunk in uploaded.chunks():
            written += len(chunk)
            if written > limit:
                raise UploadRejected(over_upload_limit("file is larger than"))
            out.write(chunk)
    if written == 0:
        raise UploadRejected("file is empty")
    return path


def folder_files_as_zip(files) -> TemporaryUploadedFile:
    """The files of a model folder, uploaded one by one, packed as the ``.zip`` a folder upload would be
    (on disk: a model near the upload limit is hundreds of MB)."""
    import zipfile

    names = [Path(f.name or "").name for f in files]
    if len(set(names)) != len(names) or not all(names):
        raise UploadRejected("the folder's files must have distinct names", field="model_files")
    total = sum(f.size or 0 for f in files)
    if total > settings.TERRAIN_MAX_UPLOAD_BYTES:
        raise UploadRejected(over_upload_limit(f"the files add up to {megabytes(total)}, above"), field="model_files")
    packed = TemporaryUploadedFile("model.zip", "application/zip", 0, None)
    with zipfile.ZipFile(packed.file, "w") as z:
        for name, f in zip(names, files):
            with z.open(f"model/{name}", "w") as out:
                for chunk in f.chunks():
                    out.write(chunk)
    packed.size = packed.file.tell()
    packed.seek(0)
    return packed


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


def _refuse_unsafe_names(name: str) -> None:
    from analysis.sources import PT2_MESSAGE

    if Path(name or "").suffix.lower() == ".pt2":
        raise UploadRejected(PT2_MESSAGE.format(name=Path(name).name))


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
    """Reads like a Checkpoint (slug, name, spec, num_parameters, dataset, source, model_info) for form checks.

    A Terrain checkpoint (``.safetensors`` with its spec, or a weights-only ``.pt``) is
    stored as safetensors; a user's own model (a Hugging Face or LoRA folder as ``.zip``,
    or an ``.onnx``) is loaded through analysis.sources to be checked, then kept as it came.
    """

    trajectory_file = None
    experiment = None  # where store() files it: the owner's sandbox unless set

    def __init__(self, uploaded, spec: dict | None, *, base: Checkpoint | None = None, head: str = "",
                 num_labels: int | None = None):
        _refuse_unsafe_names(uploaded.name)
        super().__init__(uploaded, CHECKPOINT_SUFFIXES)
        self.source, self.model_info, self.parent, self.relation = ModelSource.BUILTIN, {}, None, ""
        self.dataset = ""
        if self.suffix in MODEL_SUFFIXES:
            self._check_model(uploaded, base=base, head=head, num_labels=num_labels)
        else:
            self._check_terrain_checkpoint(uploaded, spec)

    @property
    def pending_path(self) -> Path:
        """The file as it will be stored (model_files.load_checkpoint reads it before it is)."""
        return self.stored_path

    def _check_terrain_checkpoint(self, uploaded, spec: dict | None) -> None:
        from analysis import checkpoints

        try:
            loaded = checkpoints.load(self.path, spec=spec, max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES)
        except checkpoints.SpecNeeded as exc:
            raise UploadRejected(f"{exc.reason}: give its architecture in “{SPEC_FIELD_TITLE}” (spec_json)") from None
        except checkpoints.CheckpointError as exc:
            raise UploadRejected(str(exc)) from None
        except Exception as exc:  # the spec itself may be invalid (zoo.SpecError) or the file odd
            raise UploadRejected(f"{type(exc).__name__}: {exc}") from None
        # Keep one format in the catalog: whatever came in is stored as safetensors.
        self.stored_path, self.stored_suffix = Path(self._tmp.name) / "checkpoint.safetensors", ".safetensors"
        checkpoints.save(self.stored_path, loaded.model, loaded.spec, meta={**loaded.meta, "uploaded_as": Path(uploaded.name).name})
        self.spec = loaded.spec
        self.num_parameters = sum(p.numel() for p in loaded.model.parameters())
        self.dataset = str(loaded.meta.get("dataset", ""))[:64]

    def _check_model(self, uploaded, *, base, head: str, num_labels) -> None:
        from analysis.sources import SourceError

        from webapp.catalog.model_files import load_path, model_info_of
        from webapp.files import local_path

        info = {k: v for k, v in (("head", head or None), ("num_labels", num_labels)) if v is not None}
        if base is not None and base.source != ModelSource.HUGGINGFACE:
            raise UploadRejected("the base of a LoRA adapter must be a Hugging Face checkpoint", field="base_checkpoint")
        base_path = local_path(base.file, sha256=base.sha256) if base is not None else None
        try:
            with tempfile.TemporaryDirectory() as work:
                loaded = load_path(self.path, Path(work), info=info, base_path=base_path)
        except SourceError as exc:
            raise UploadRejected(str(exc), field=exc.field if exc.field != "checkpoint" else None) from None
        except Exception as exc:  # anything else a hostile file provokes is still a refusal, never a 500
            raise UploadRejected(f"{Path(uploaded.name).name}: cannot be loaded ({type(exc).__name__}: {str(exc)[:300]})") from None
        limit = settings.TERRAIN_MAX_MODEL_PARAMETERS
        if loaded.num_parameters > limit:
            raise UploadRejected(f"the model has {loaded.num_parameters:,} parameters, above this server's limit of {limit:,} (TERRAIN_MAX_MODEL_PARAMETERS)")
        self.source = loaded.provenance["source"]
        self.model_info = model_info_of(loaded)
        self.spec = {"source": self.source, "model_type": self.model_info.get("model_type"),
                     "architecture": self.model_info.get("architecture"), "head": self.model_info.get("head")}
        self.num_parameters = loaded.num_parameters
        if self.source == ModelSource.LORA:
            self.parent, self.relation = base, Relation.ADAPTER
        self.stored_path, self.stored_suffix = self.path, self.suffix  # kept as it came: checked again at every load

    def store(self, *, owner) -> Checkpoint:
        return checkpoint_create_from_file(
            experiment=self.experiment or experiment_sandbox_for(user=owner), name=self.name, path=self.stored_path,
            spec=self.spec, num_parameters=self.num_parameters, dataset=self.dataset, slug=self.slug,
            source=self.source, model_info=self.model_info, parent=self.parent, relation=self.relation,
            suffix=self.stored_suffix,
        )


class PendingDataset(PendingUpload):
    """An (X, y) file, or token ids (input_ids, optional attention_mask and labels) for a user's language model."""

    def __init__(self, uploaded):
        super().__init__(uploaded, DATASET_SUFFIXES)
        if _holds_token_ids(self.path):
            self.info = _token_info(self.path)
            self.description = {"task": "tokens", "num_samples": self.info["samples"], "num_train": self.info["samples"],
                                "num_test": self.info["samples"], "seq_len": self.info["seq_len"]}
        else:
            self.info, self.description = _array_info(self.path)


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
def checkpoint_upload(*, owner, uploaded, spec: dict | None = None, name: str = "", experiment=None,
                      **model_options) -> Checkpoint:
    """Validate an uploaded checkpoint and keep it in `experiment` (default: the owner's sandbox) at once
    (the run-logging API, where the upload is the whole request). `model_options`: base, head, num_labels."""
    pending = PendingCheckpoint(uploaded, spec, **model_options)
    pending.name = name or pending.name
    pending.experiment = experiment
    return uploads_store(uploads=[pending], owner=owner)[0]


@transaction.atomic
def dataset_upload(*, owner, uploaded, name: str = "") -> DatasetUpload:
    """Validate an uploaded (X, y) file with analysis.data and keep it for the owner."""
    pending = PendingDataset(uploaded)
    pending.name = name or pending.name
    return uploads_store(uploads=[pending], owner=owner)[0]


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


def _array_info(path: Path) -> tuple[dict, dict]:
    from analysis import data

    limits = {"max_bytes": settings.TERRAIN_MAX_UPLOAD_BYTES, "max_array_bytes": settings.TERRAIN_MAX_UNPACKED_BYTES}
    try:
        X, y = data.load("file", "all", path=str(path), **limits)
        description = data.describe("file", path=str(path), **limits)
    except data.DataError as exc:
        raise UploadRejected(str(exc)) from None
    return {
        "samples": int(X.shape[0]),
        "input_shape": list(X.shape[1:]),
        "x_dtype": str(X.dtype).replace("torch.", ""),
        "y_dtype": str(y.dtype).replace("torch.", ""),
        "task": "regression" if y.is_floating_point() else "classification",
        "classes": None if y.is_floating_point() else int(y.max()) + 1,
    }, description
