"""Model sources: Terrain's own specs, Hugging Face folders, LoRA adapters and ONNX graphs.

``load_model(path)`` looks at what ``path`` is and returns a
:class:`~analysis.sources.base.LoadedModel`; a refused input raises
:class:`~analysis.sources.base.SourceError` whose message says what to upload
instead.  No user code ever runs: no pickles, no ``.pt2``, no remote code, no
graph turned into Python.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import LoadedModel, SourceError, unwrap

__all__ = ["LoadedModel", "SourceError", "load_model", "detect", "unwrap"]

PT2_MESSAGE = (
    "{name}: .pt2 (torch.export) files are refused: loading one can run code. Upload a Hugging Face folder "
    "saved with save_pretrained(..., safe_serialization=True), or an ONNX file from torch.onnx.export(...)"
)
PICKLE_MESSAGE = (
    "{name}: pickled files are never opened (loading a pickle can run code). Upload safetensors: "
    "save_pretrained(..., safe_serialization=True) for a Hugging Face model, safetensors.torch.save_file(model.state_dict(), ...) "
    "for a Terrain checkpoint, or torch.onnx.export(...)"
)


def detect(path: str | os.PathLike) -> str:
    """``"builtin" | "huggingface" | "lora" | "onnx" | "zip"`` for ``path``, or a :class:`SourceError`."""
    p = Path(path)
    if p.is_dir():
        if (p / "adapter_config.json").is_file():
            return "lora"
        if (p / "config.json").is_file():
            return "huggingface"
        if (p / "model.onnx").is_file():
            return "onnx"
        names = sorted(x.name for x in p.iterdir())
        if any(n.endswith(".pt2") for n in names):
            raise SourceError(PT2_MESSAGE.format(name=p.name))
        raise SourceError(
            f"{p.name}: a model folder needs config.json + model.safetensors (Hugging Face), "
            "adapter_config.json + adapter_model.safetensors (LoRA) or model.onnx"
        )
    if not p.is_file():
        raise SourceError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix == ".pt2":
        raise SourceError(PT2_MESSAGE.format(name=p.name))
    if suffix in (".bin", ".pkl", ".pickle", ".ckpt", ".pth"):
        raise SourceError(PICKLE_MESSAGE.format(name=p.name))
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".zip":
        return "zip"
    return "builtin"  # Terrain checkpoints (.safetensors with a spec, weights-only .pt)


def load_model(path: str | os.PathLike, *, spec: dict | None = None, extract_to: str | os.PathLike | None = None, **options) -> LoadedModel:
    """Load any accepted model from a file or folder (``options`` go to the source's loader).

    A ``.zip`` is extracted safely (:mod:`analysis.sources.archive`) into
    ``extract_to`` (default: a folder beside it) and the folder inside loaded.
    """
    kind = detect(path)
    if kind == "zip":
        from . import archive

        folder = archive.extract_model_zip(path, extract_to)
        return load_model(folder, spec=spec, **options)
    if kind == "huggingface":
        from . import huggingface

        return huggingface.load(path, **options)
    if kind == "lora":
        from . import lora

        return lora.load(path, **options)
    if kind == "onnx":
        from . import onnx as onnx_source

        return onnx_source.load(path, **options)
    from . import spec as spec_source

    return spec_source.load(path, spec=spec)
