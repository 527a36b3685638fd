"""Safe checkpoint and trajectory files.

Files are `safetensors <https://huggingface.co/docs/safetensors>`_ with the
architecture spec (and free-form JSON metadata) stored as JSON strings in the
safetensors header metadata::

    {"terrain.format": "terrain.checkpoint.v1",
     "terrain.spec":   "<json of the zoo spec>",
     "terrain.meta":   "<json object>"}

Trajectories (several states of one architecture) are :mod:`analysis.trajectories`;
their names are exported here too, as the one place to load weights from.

Uploads are hostile until proven otherwise: files are read through
:mod:`analysis.weight_files`, which never unpickles (a PyTorch ``.pt``/``.pth``
state dict goes through ``torch.load(weights_only=True)`` and needs the spec
passed in), and states are checked against their spec by
:mod:`analysis.state_checks`.  Every problem — a file over ``max_bytes``, a
corrupt or truncated file, a pickle with a payload, non-tensor values, missing
or extra keys, shapes that do not match the spec, non-float weights, NaN or
Inf — raises :class:`CheckpointError` with a message saying what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from . import zoo
from .state_checks import build_with_state, check_finite, check_shapes, check_state_dict, parse_spec, spec_of_file, state_dict_of
from .trajectories import (
    DEFAULT_MAX_TRAJECTORY_BYTES,
    MAX_TRAJECTORY_STATES,
    TRAJECTORY_FORMAT,
    Trajectory,
    load_trajectory,
    save_trajectory,
)
from .weight_files import (
    NO_SPEC_IN_SAFETENSORS,
    NO_SPEC_IN_STATE_DICT,
    ST_DTYPES,
    CheckpointError,
    SpecNeeded,
    atomic_save,
    check_size,
    check_torch_zip,
    json_dumps,
    json_loads,
    load_safetensors,
    load_torch_state,
    misnamed,
    read_safetensors_header,
    sniff,
)

__all__ = [
    "CheckpointError",
    "SpecNeeded",
    "Checkpoint",
    "Trajectory",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TRAJECTORY_BYTES",
    "MAX_TRAJECTORY_STATES",
    "save",
    "load",
    "inspect",
    "save_trajectory",
    "load_trajectory",
    "check_state_dict",
    "state_dict_of",
]

DEFAULT_MAX_BYTES = 512 * 2**20
CHECKPOINT_FORMAT = "terrain.checkpoint.v1"


@dataclass
class Checkpoint:
    """A loaded checkpoint.  Unpacks as ``model, spec, meta = load(path)``."""

    model: nn.Module
    spec: dict
    meta: dict = field(default_factory=dict)
    format: str = "safetensors"

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.spec, self.meta))

    @property
    def state(self) -> dict[str, torch.Tensor]:
        return state_dict_of(self.model)


def save(
    path: str | os.PathLike,
    model: nn.Module | Mapping[str, torch.Tensor],
    spec: dict,
    meta: dict | None = None,
) -> Path:
    """Write ``model`` (or a state dict) with its spec and meta to a safetensors file.

    The write is atomic (temporary file + rename).  Returns the path.
    """
    s = parse_spec(spec, "invalid spec")
    state = state_dict_of(model)
    check_state_dict(state, s)
    metadata = {
        "terrain.format": CHECKPOINT_FORMAT,
        "terrain.spec": json_dumps(s, "spec"),
        "terrain.meta": json_dumps(meta or {}, "meta"),
    }
    path = Path(path)
    atomic_save(path, state, metadata)
    return path


def _read_any(path: Path, spec: dict | None, max_bytes: int | None) -> tuple[dict, dict, dict[str, torch.Tensor], str]:
    size = check_size(path, max_bytes)
    kind = sniff(path)
    if wrong := misnamed(path, kind):
        raise CheckpointError(wrong)
    if kind == "safetensors":
        header, metadata, _ = read_safetensors_header(path, size)
        fmt = metadata.get("terrain.format", CHECKPOINT_FORMAT)
        if fmt == TRAJECTORY_FORMAT:
            raise CheckpointError("this is a trajectory file; use load_trajectory()")
        s = spec_of_file(metadata, spec, NO_SPEC_IN_SAFETENSORS)
        meta = json_loads(metadata["terrain.meta"], "terrain.meta") if "terrain.meta" in metadata else {}
        if not isinstance(meta, dict):
            raise CheckpointError("terrain.meta must be a JSON object")
        check_shapes(
            {k: tuple(e["shape"]) for k, e in header.items()}, {k: ST_DTYPES[e["dtype"]][0] for k, e in header.items()}, s
        )
        state = load_safetensors(path)
        return s, meta, state, "safetensors"
    if kind in ("torch-zip", "pickle"):
        if spec is None:
            raise SpecNeeded(NO_SPEC_IN_STATE_DICT)
        s = parse_spec(spec, "invalid spec")
        if kind == "torch-zip":
            check_torch_zip(path, max_bytes)
        state = load_torch_state(path)
        check_shapes({k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()}, s)
        return s, {}, state, "torch"
    raise CheckpointError("not a safetensors or PyTorch state-dict file (unrecognised or corrupt header)")


def load(
    path: str | os.PathLike,
    spec: dict | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> Checkpoint:
    """Load and validate a checkpoint; returns a :class:`Checkpoint` (model in eval mode).

    ``spec`` overrides the file's own spec and is required for ``.pt`` files.
    A float64 checkpoint gives a float64 model.  Raises :class:`CheckpointError`.
    """
    path = Path(path)
    s, meta, state, fmt = _read_any(path, spec, max_bytes)
    check_finite(state)
    return Checkpoint(model=build_with_state(s, state), spec=s, meta=meta, format=fmt)


def inspect(
    path: str | os.PathLike,
    spec: dict | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_TRAJECTORY_BYTES,
    check_values: bool = True,
) -> dict:
    """Validate a checkpoint or trajectory file without building a model.

    Returns ``{"format", "kind" ("checkpoint"|"trajectory"), "bytes", "spec",
    "meta", "num_parameters", "tensors": {key: {"shape", "dtype"}}}`` plus
    ``"steps"`` for trajectories.  Shapes are checked against the spec from
    the header alone; ``check_values`` also reads the data to check NaN/Inf.
    """
    path = Path(path)
    size = check_size(path, max_bytes)
    kind = sniff(path)
    if kind == "safetensors":
        header, metadata, _ = read_safetensors_header(path, size)
        if metadata.get("terrain.format") == TRAJECTORY_FORMAT:
            traj = load_trajectory(path, spec=spec, max_bytes=max_bytes) if check_values else None
            steps = traj.steps if traj else json_loads(metadata.get("terrain.steps", "[]"), "terrain.steps")
            s = traj.spec if traj else parse_spec(spec or json_loads(metadata["terrain.spec"], "terrain.spec"), "spec")
            first = {k.split("/", 1)[1]: e for k, e in header.items() if k.startswith(f"{0:05d}/")}
            return {
                "format": "safetensors",
                "kind": "trajectory",
                "bytes": size,
                "spec": s,
                "meta": traj.meta if traj else json_loads(metadata.get("terrain.meta", "{}"), "terrain.meta"),
                "steps": list(steps),
                "num_states": len(steps),
                "num_parameters": zoo.count_parameters(s),
                "tensors": {k: {"shape": e["shape"], "dtype": str(ST_DTYPES[e["dtype"]][0]).replace("torch.", "")}
                            for k, e in first.items()},
            }
        s, meta, state, fmt = (
            _read_any(path, spec, max_bytes) if check_values else (None, None, None, "safetensors")
        )
        if not check_values:
            spec_obj = spec if spec is not None else json_loads(metadata.get("terrain.spec", "null"), "terrain.spec")
            if spec_obj is None:
                raise SpecNeeded(NO_SPEC_IN_SAFETENSORS)
            s = parse_spec(spec_obj, "invalid spec")
            meta = json_loads(metadata.get("terrain.meta", "{}"), "terrain.meta")
            check_shapes(
                {k: tuple(e["shape"]) for k, e in header.items()},
                {k: ST_DTYPES[e["dtype"]][0] for k, e in header.items()},
                s,
            )
        else:
            check_finite(state)
        tensors = {
            k: {"shape": e["shape"], "dtype": str(ST_DTYPES[e["dtype"]][0]).replace("torch.", "")}
            for k, e in sorted(header.items())
        }
    else:
        s, meta, state, fmt = _read_any(path, spec, max_bytes)
        check_finite(state)
        tensors = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in sorted(state.items())}
    return {
        "format": fmt,
        "kind": "checkpoint",
        "bytes": size,
        "spec": s,
        "meta": meta,
        "num_parameters": zoo.count_parameters(s),
        "tensors": tensors,
    }
