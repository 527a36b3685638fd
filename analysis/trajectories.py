"""Trajectory files: several states of one architecture (training snapshots) in one safetensors file.

Keys are ``"<index>/<state_dict key>"`` (index zero-padded), with
``"terrain.format": "terrain.trajectory.v1"`` and ``"terrain.steps": "[0, 10, ...]"``
beside the spec and meta in the header metadata.  Read as hostile as checkpoints
(:mod:`analysis.weight_files`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from . import zoo
from .state_checks import check_finite, check_shapes, check_state_dict, parse_spec, spec_of_file, state_dict_of
from .weight_files import (
    ST_DTYPES,
    CheckpointError,
    atomic_save,
    check_size,
    json_dumps,
    json_loads,
    load_safetensors,
    read_safetensors_header,
    sniff,
)

DEFAULT_MAX_TRAJECTORY_BYTES = 4 * 2**30
MAX_TRAJECTORY_STATES = 10_000
TRAJECTORY_FORMAT = "terrain.trajectory.v1"


@dataclass
class Trajectory:
    """States of one architecture along training, ``states[i]`` taken at ``steps[i]``."""

    steps: list[int]
    states: list[dict[str, torch.Tensor]]
    spec: dict
    meta: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.steps, self.states, self.spec, self.meta))

    def __len__(self) -> int:
        return len(self.steps)


def save_trajectory(
    path: str | os.PathLike,
    states: list[Mapping[str, torch.Tensor] | nn.Module],
    steps: list[int],
    spec: dict,
    meta: dict | None = None,
) -> Path:
    """Write several states of one architecture (e.g. training snapshots) to one file."""
    s = parse_spec(spec, "invalid spec")
    steps = [int(x) for x in steps]
    if len(steps) != len(states):
        raise CheckpointError(f"got {len(states)} states but {len(steps)} steps")
    if not states:
        raise CheckpointError("a trajectory needs at least one state")
    if len(states) > MAX_TRAJECTORY_STATES:
        raise CheckpointError(f"a trajectory may hold at most {MAX_TRAJECTORY_STATES} states")
    tensors: dict[str, torch.Tensor] = {}
    for i, state in enumerate(states):
        st = state_dict_of(state)
        try:
            check_state_dict(st, s)
        except CheckpointError as exc:
            raise CheckpointError(f"state {i} (step {steps[i]}): {exc}") from None
        for k, v in st.items():
            tensors[f"{i:05d}/{k}"] = v
    metadata = {
        "terrain.format": TRAJECTORY_FORMAT,
        "terrain.spec": json_dumps(s, "spec"),
        "terrain.meta": json_dumps(meta or {}, "meta"),
        "terrain.steps": json_dumps(steps, "steps"),
    }
    path = Path(path)
    atomic_save(path, tensors, metadata)
    return path


def load_trajectory(
    path: str | os.PathLike,
    spec: dict | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_TRAJECTORY_BYTES,
) -> Trajectory:
    """Load and validate a trajectory file written by :func:`save_trajectory`."""
    path = Path(path)
    size = check_size(path, max_bytes)
    if sniff(path) != "safetensors":
        raise CheckpointError("a trajectory must be a safetensors file")
    header, metadata, _ = read_safetensors_header(path, size)
    if metadata.get("terrain.format") != TRAJECTORY_FORMAT:
        raise CheckpointError("not a trajectory file (missing terrain.format = terrain.trajectory.v1)")
    s = spec_of_file(metadata, spec, "trajectory has no 'terrain.spec' metadata")
    steps = json_loads(metadata.get("terrain.steps", "null"), "terrain.steps")
    if not isinstance(steps, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in steps):
        raise CheckpointError("terrain.steps must be a JSON list of integers")
    if not steps or len(steps) > MAX_TRAJECTORY_STATES:
        raise CheckpointError(f"a trajectory must hold between 1 and {MAX_TRAJECTORY_STATES} states, got {len(steps)}")
    meta = json_loads(metadata.get("terrain.meta", "{}"), "terrain.meta")
    if not isinstance(meta, dict):
        raise CheckpointError("terrain.meta must be a JSON object")
    grouped_shapes: list[dict[str, tuple[int, ...]]] = [{} for _ in steps]
    grouped_dtypes: list[dict[str, torch.dtype]] = [{} for _ in steps]
    for key, entry in header.items():
        idx, sep, name = key.partition("/")
        if not sep or not idx.isdigit() or int(idx) >= len(steps):
            raise CheckpointError(f"unexpected tensor {key!r} in trajectory")
        grouped_shapes[int(idx)][name] = tuple(entry["shape"])
        grouped_dtypes[int(idx)][name] = ST_DTYPES[entry["dtype"]][0]
    for i in range(len(steps)):
        check_shapes(grouped_shapes[i], grouped_dtypes[i], s, prefix=f"state {i} (step {steps[i]}): ")
    flat = load_safetensors(path)
    states: list[dict[str, torch.Tensor]] = [{} for _ in steps]
    for key, value in flat.items():
        idx, _, name = key.partition("/")
        states[int(idx)][name] = value
    # keep each state in the spec's key order
    order = list(zoo.parameter_shapes(s))
    states = [{k: st[k] for k in order} for st in states]
    for i, st in enumerate(states):
        check_finite(st, prefix=f"state {i} (step {steps[i]}): ")
    return Trajectory(steps=steps, states=states, spec=s, meta=meta)
