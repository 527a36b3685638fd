"""Catalog checkpoints of any source (built-in, Hugging Face, LoRA, ONNX) as analysis models.

A Hugging Face or LoRA checkpoint is kept as the uploaded ``.zip`` of its
folder and an ONNX one as its ``.onnx``; every load goes through
:mod:`analysis.sources` again (safe extraction into a private directory,
every check repeated), so a stored file is never trusted more than an upload.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from webapp.catalog.models import Checkpoint, ModelSource
from webapp.files import local_path


def _options(info: dict) -> dict:
    # model_info records every config's num_labels (transformers defaults it to 2); only a classifier takes it
    keys = ("head",) if str(info.get("head", "")).endswith("-lm") else ("head", "num_labels")
    return {k: info[k] for k in keys if info.get(k) is not None}


def load_path(path: Path, workdir: Path, *, info: dict | None = None, base_path: Path | None = None):
    """Load a model file (a Terrain checkpoint, a folder ``.zip`` or an ``.onnx``) into a LoadedModel."""
    from analysis.sources import archive, detect, lora, load_model

    info = info or {}
    if detect(path) != "zip":  # a Terrain checkpoint or an ONNX graph
        return load_model(path)
    folder = archive.extract_model_zip(path, workdir / "model", max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES * 8)
    options = {**_options(info), "max_parameters": settings.TERRAIN_MAX_MODEL_PARAMETERS}
    if detect(folder) == "lora":
        if base_path is None:
            from analysis.sources import SourceError

            raise SourceError("this is a LoRA adapter: choose its base model (a Hugging Face checkpoint) as well", field="base_checkpoint")
        base = archive.extract_model_zip(base_path, workdir / "base", max_bytes=settings.TERRAIN_MAX_UPLOAD_BYTES * 8)
        return lora.load(folder, base=base, **options)
    return load_model(folder, **options)


def load_checkpoint(record: Checkpoint, workdir: Path):
    """The catalog checkpoint ``record`` (or a validated upload not stored yet) as a :class:`analysis.sources.LoadedModel`."""
    base = record.parent if record.source == ModelSource.LORA and record.parent else None
    base_path = local_path(base.file, sha256=base.sha256) if base is not None else None
    path = getattr(record, "pending_path", None) or local_path(record.file, sha256=record.sha256)
    return load_path(path, workdir, info=record.model_info, base_path=base_path)


def model_info_of(loaded) -> dict:
    """What the catalog shows and the forms check: no local paths."""
    p = loaded.provenance
    hf = getattr(getattr(loaded.module, "model", None), "config", None)
    info = {k: p[k] for k in ("architecture", "model_type", "head", "num_parameters", "opset") if p.get(k) is not None}
    info["input_kind"] = loaded.input_kind
    info["differentiable"] = loaded.differentiable
    if hf is not None:
        for key in ("vocab_size", "num_labels", "max_position_embeddings", "n_positions", "image_size", "num_channels"):
            value = getattr(hf, key, None)
            if isinstance(value, int):
                info[key] = value
    if p.get("lora"):
        info["lora"] = {k: v for k, v in p["lora"].items()}
    if p.get("initialised_head"):
        info["initialised_head"] = p["initialised_head"]
    return info
