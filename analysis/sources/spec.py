"""Terrain's own architectures (zoo specs) as a :class:`LoadedModel`."""

from __future__ import annotations

import os

from torch import nn

from .. import checkpoints, zoo
from .base import LoadedModel, builtin_accuracy, builtin_loss

__all__ = ["from_module", "load"]


def _input_kind(spec: dict) -> str:
    if spec["kind"] == "transformer":
        return "tokens"
    return "images" if spec["kind"] == "cnn" else "features"


def from_module(module: nn.Module, spec: dict, meta: dict | None = None) -> LoadedModel:
    return LoadedModel(
        module=module.eval(),
        loss_fn=builtin_loss,
        accuracy_fn=builtin_accuracy,
        input_kind=_input_kind(spec),
        provenance={
            "source": "builtin",
            "architecture": spec["kind"],
            "model_type": spec["kind"],
            "num_parameters": zoo.count_parameters(spec),
            "spec": spec,
            **({"meta": meta} if meta else {}),
        },
    )


def load(path: str | os.PathLike, spec: dict | None = None) -> LoadedModel:
    """A Terrain checkpoint (``.safetensors`` with its spec, or a weights-only ``.pt`` plus ``spec``)."""
    ck = checkpoints.load(path, spec=spec)
    return from_module(ck.model, ck.spec, ck.meta)
