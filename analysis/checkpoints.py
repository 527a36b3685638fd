"""Safe checkpoint and trajectory files.

Files are `safetensors <https://huggingface.co/docs/safetensors>`_ with the
architecture spec (and free-form JSON metadata) stored as JSON strings in the
safetensors header metadata::

    {"terrain.format": "terrain.checkpoint.v1",
     "terrain.spec":   "<json of the zoo spec>",
     "terrain.meta":   "<json object>"}

Trajectories (several states of one architecture) use one safetensors file with
keys ``"<index>/<state_dict key>"`` (index zero-padded) and
``"terrain.format": "terrain.trajectory.v1"``, ``"terrain.steps": "[0, 10, ...]"``.

Uploads are hostile until proven otherwise: nothing here ever unpickles.  A
PyTorch ``.pt``/``.pth`` state dict is read only through
``torch.load(path, weights_only=True)`` (PyTorch's restricted unpickler, which
refuses every global that is not a tensor/container type), and then needs the
spec passed in.  Every problem — a file over ``max_bytes``, a corrupt or
truncated file, a pickle with a payload, non-tensor values, missing or extra
keys, shapes that do not match the spec, non-float weights, NaN or Inf —
raises :class:`CheckpointError` with a message saying what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from . import zoo

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "Trajectory",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TRAJECTORY_BYTES",
    "save",
    "load",
    "inspect",
    "save_trajectory",
    "load_trajectory",
    "check_state_dict",
    "state_dict_of",
]

DEFAULT_MAX_BYTES = 512 * 2**20
DEFAULT_MAX_TRAJECTORY_BYTES = 4 * 2**30
MAX_HEADER_BYTES = 100 * 2**20  # the limit safetensors itself uses
MAX_TRAJECTORY_STATES = 10_000

CHECKPOINT_FORMAT = "terrain.checkpoint.v1"
TRAJECTORY_FORMAT = "terrain.trajectory.v1"

_ST_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


class CheckpointError(ValueError):
    """A checkpoint or trajectory file cannot be used; the message says why."""


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


# --------------------------------------------------------------------------- helpers


def state_dict_of(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU clones of a model's (or a mapping's) tensors."""
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _json_dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} must be JSON-serialisable: {exc}") from None


def _json_loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} in the file is not valid JSON: {exc}") from None


def _check_size(path: Path, max_bytes: int | None) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint file {str(path)!r}: {exc}") from None
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} is not a regular file")
    if max_bytes is not None and size > max_bytes:
        raise CheckpointError(f"file is {size:,} bytes, more than the limit of {max_bytes:,} bytes")
    if size < 8:
        raise CheckpointError(f"file is only {size} bytes: empty or truncated")
    return size


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: u64 header length, then a JSON object starting with '{'.
    # Checked first: the length's low byte may well be 0x80, like a pickle's first byte.
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:1] == b"\x80":  # pickle protocol 2+ (legacy torch.save format)
        return "pickle"
    return "unknown"


def _read_safetensors_header(path: Path, size: int) -> tuple[dict[str, dict], dict[str, str], int]:
    """Parse and check the header without reading tensor data.

    Returns (tensor entries, metadata, data section length).
    """
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(f"safetensors header claims {n:,} bytes, more than {MAX_HEADER_BYTES:,}: corrupt file")
        if 8 + n > size:
            raise CheckpointError(
                f"safetensors header claims {n:,} bytes but the file has only {size - 8:,} after the length: "
                "truncated or corrupt file"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"safetensors header is not valid JSON (corrupt file): {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError("safetensors header is not a JSON object (corrupt file)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise CheckpointError("safetensors metadata must map strings to strings")
    data_len = size - 8 - n
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"entry {name!r} is not a tensor description (non-tensor value)")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _ST_DTYPES:
            raise CheckpointError(f"tensor {name!r} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise CheckpointError(f"tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise CheckpointError(f"tensor {name!r} has invalid data offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise CheckpointError(f"tensor {name!r} has invalid data offsets {offsets!r}")
        if end > data_len:
            raise CheckpointError(
                f"tensor {name!r} ends at byte {end:,} of the data but the file holds only {data_len:,}: truncated file"
            )
        if end - begin != math.prod(shape) * _ST_DTYPES[dtype][1]:
            raise CheckpointError(f"tensor {name!r}: data size does not match shape {shape} and dtype {dtype} (corrupt)")
        spans.append((begin, end))
    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise CheckpointError("tensor data regions overlap or leave gaps (corrupt file)")
        pos = end
    if pos != data_len:
        raise CheckpointError(f"file has {data_len - pos:,} bytes after the last tensor (corrupt or wrong file)")
    return header, metadata, data_len


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read safetensors data: {exc}") from None


def _check_torch_zip(path: Path, max_bytes: int | None) -> None:
    """torch.save stores its members uncompressed: a member that inflates, or members that
    add up to more than twice the file cap, are a decompression bomb, refused before loading."""
    from analysis.archives import ArchiveRejected, check_zip

    try:
        check_zip(path, max_unpacked_bytes=None if max_bytes is None else 2 * max_bytes)
    except ArchiveRejected as exc:
        raise CheckpointError(f"refused PyTorch file: {exc}") from None


def _load_torch_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only=True: PyTorch's restricted unpickler; never runs a payload.
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure is the file's fault
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "Unpickl" in type(exc).__name__:
            raise CheckpointError(
                f"refused to load: the file is a pickle with objects other than tensors ({msg[:200]})"
            ) from None
        raise CheckpointError(f"cannot read PyTorch file (corrupt or truncated?): {msg[:200]}") from None
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict):
        raise CheckpointError(f"PyTorch file holds a {type(obj).__name__}, not a state dict of tensors")
    for k, v in obj.items():
        if not isinstance(k, str):
            raise CheckpointError(f"state dict key {k!r} is not a string")
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor (non-tensor value)")
    return dict(obj)


def _parse_spec(spec: Any, where: str) -> dict:
    try:
        return zoo.validate_spec(spec)
    except zoo.SpecError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def _check_shapes(
    shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, torch.dtype], spec: dict, prefix: str = ""
) -> None:
    expected = zoo.parameter_shapes(spec)
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointError(f"{prefix}missing tensors for spec kind {spec['kind']!r}: {missing[:5]}{more}")
    if extra:
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        raise CheckpointError(f"{prefix}unexpected tensors not in the spec: {extra[:5]}{more}")
    for name, want in expected.items():
        got = tuple(shapes[name])
        if got != want:
            raise CheckpointError(f"{prefix}tensor {name!r} has shape {list(got)} but the spec needs {list(want)}")
        dtype = dtypes[name]
        if name.endswith("num_batches_tracked"):
            if dtype.is_floating_point or dtype == torch.bool:
                raise CheckpointError(f"{prefix}tensor {name!r} must be an integer tensor, got {dtype}")
        elif dtype not in _FLOAT_DTYPES:
            raise CheckpointError(f"{prefix}tensor {name!r} must be floating point, got {dtype}")


def _check_finite(state: Mapping[str, torch.Tensor], prefix: str = "") -> None:
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n_nan = int(torch.isnan(t).sum())
            n_inf = int(torch.isinf(t).sum())
            raise CheckpointError(f"{prefix}tensor {name!r} contains {n_nan} NaN and {n_inf} Inf values")


def check_state_dict(state: Mapping[str, torch.Tensor], spec: dict) -> dict:
    """Check a state dict against a spec (keys, shapes, dtypes, finiteness).

    Returns the normalised spec; raises :class:`CheckpointError`.
    """
    s = _parse_spec(spec, "invalid spec")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor")
    _check_shapes({k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()}, s)
    _check_finite(state)
    return s


def _build_with_state(spec: dict, state: Mapping[str, torch.Tensor]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # building initialises weights; keep callers' RNG untouched
        model = zoo.build(spec)
    floats = {v.dtype for k, v in state.items() if v.is_floating_point()}
    if len(floats) == 1:
        (dtype,) = floats
        if dtype in (torch.float64, torch.float32):
            model = model.to(dtype)  # a float64 checkpoint loads as a float64 model
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"state dict does not fit the spec: {exc}") from None
    model.terrain_spec = spec
    return model.eval()


def _atomic_save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- checkpoints


def save(
    path: str | os.PathLike,
    model: nn.Module | Mapping[str, torch.Tensor],
    spec: dict,
    meta: dict | None = None,
) -> Path:
    """Write ``model`` (or a state dict) with its spec and meta to a safetensors file.

    The write is atomic (temporary file + rename).  Returns the path.
    """
    s = _parse_spec(spec, "invalid spec")
    state = state_dict_of(model)
    check_state_dict(state, s)
    metadata = {
        "terrain.format": CHECKPOINT_FORMAT,
        "terrain.spec": _json_dumps(s, "spec"),
        "terrain.meta": _json_dumps(meta or {}, "meta"),
    }
    path = Path(path)
    _atomic_save(path, state, metadata)
    return path


def _read_any(path: Path, spec: dict | None, max_bytes: int | None) -> tuple[dict, dict, dict[str, torch.Tensor], str]:
    size = _check_size(path, max_bytes)
    kind = _sniff(path)
    if kind == "safetensors":
        header, metadata, _ = _read_safetensors_header(path, size)
        fmt = metadata.get("terrain.format", CHECKPOINT_FORMAT)
        if fmt == TRAJECTORY_FORMAT:
            raise CheckpointError("this is a trajectory file; use load_trajectory()")
        if spec is None:
            if "terrain.spec" not in metadata:
                raise CheckpointError("safetensors file has no 'terrain.spec' metadata; pass spec= explicitly")
            spec = _json_loads(metadata["terrain.spec"], "terrain.spec")
        s = _parse_spec(spec, "invalid spec")
        meta = _json_loads(metadata["terrain.meta"], "terrain.meta") if "terrain.meta" in metadata else {}
        if not isinstance(meta, dict):
            raise CheckpointError("terrain.meta must be a JSON object")
        _check_shapes(
            {k: tuple(e["shape"]) for k, e in header.items()}, {k: _ST_DTYPES[e["dtype"]][0] for k, e in header.items()}, s
        )
        state = _load_safetensors(path)
        return s, meta, state, "safetensors"
    if kind in ("torch-zip", "pickle"):
        if spec is None:
            raise CheckpointError("a PyTorch state-dict file carries no spec; pass spec= to load it")
        s = _parse_spec(spec, "invalid spec")
        if kind == "torch-zip":
            _check_torch_zip(path, max_bytes)
        state = _load_torch_state(path)
        _check_shapes({k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()}, s)
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
    _check_finite(state)
    return Checkpoint(model=_build_with_state(s, state), spec=s, meta=meta, format=fmt)


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
    size = _check_size(path, max_bytes)
    kind = _sniff(path)
    if kind == "safetensors":
        header, metadata, _ = _read_safetensors_header(path, size)
        if metadata.get("terrain.format") == TRAJECTORY_FORMAT:
            traj = load_trajectory(path, spec=spec, max_bytes=max_bytes) if check_values else None
            steps = traj.steps if traj else _json_loads(metadata.get("terrain.steps", "[]"), "terrain.steps")
            s = traj.spec if traj else _parse_spec(spec or _json_loads(metadata["terrain.spec"], "terrain.spec"), "spec")
            first = {k.split("/", 1)[1]: e for k, e in header.items() if k.startswith(f"{0:05d}/")}
            return {
                "format": "safetensors",
                "kind": "trajectory",
                "bytes": size,
                "spec": s,
                "meta": traj.meta if traj else _json_loads(metadata.get("terrain.meta", "{}"), "terrain.meta"),
                "steps": list(steps),
                "num_states": len(steps),
                "num_parameters": zoo.count_parameters(s),
                "tensors": {k: {"shape": e["shape"], "dtype": str(_ST_DTYPES[e["dtype"]][0]).replace("torch.", "")}
                            for k, e in first.items()},
            }
        s, meta, state, fmt = (
            _read_any(path, spec, max_bytes) if check_values else (None, None, None, "safetensors")
        )
        if not check_values:
            spec_obj = spec if spec is not None else _json_loads(metadata.get("terrain.spec", "null"), "terrain.spec")
            if spec_obj is None:
                raise CheckpointError("safetensors file has no 'terrain.spec' metadata; pass spec= explicitly")
            s = _parse_spec(spec_obj, "invalid spec")
            meta = _json_loads(metadata.get("terrain.meta", "{}"), "terrain.meta")
            _check_shapes(
                {k: tuple(e["shape"]) for k, e in header.items()},
                {k: _ST_DTYPES[e["dtype"]][0] for k, e in header.items()},
                s,
            )
        else:
            _check_finite(state)
        tensors = {
            k: {"shape": e["shape"], "dtype": str(_ST_DTYPES[e["dtype"]][0]).replace("torch.", "")}
            for k, e in sorted(header.items())
        }
    else:
        s, meta, state, fmt = _read_any(path, spec, max_bytes)
        _check_finite(state)
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


# --------------------------------------------------------------------------- trajectories


def save_trajectory(
    path: str | os.PathLike,
    states: list[Mapping[str, torch.Tensor] | nn.Module],
    steps: list[int],
    spec: dict,
    meta: dict | None = None,
) -> Path:
    """Write several states of one architecture (e.g. training snapshots) to one file."""
    s = _parse_spec(spec, "invalid spec")
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
        "terrain.spec": _json_dumps(s, "spec"),
        "terrain.meta": _json_dumps(meta or {}, "meta"),
        "terrain.steps": _json_dumps(steps, "steps"),
    }
    path = Path(path)
    _atomic_save(path, tensors, metadata)
    return path


def load_trajectory(
    path: str | os.PathLike,
    spec: dict | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_TRAJECTORY_BYTES,
) -> Trajectory:
    """Load and validate a trajectory file written by :func:`save_trajectory`."""
    path = Path(path)
    size = _check_size(path, max_bytes)
    if _sniff(path) != "safetensors":
        raise CheckpointError("a trajectory must be a safetensors file")
    header, metadata, _ = _read_safetensors_header(path, size)
    if metadata.get("terrain.format") != TRAJECTORY_FORMAT:
        raise CheckpointError("not a trajectory file (missing terrain.format = terrain.trajectory.v1)")
    if spec is None:
        if "terrain.spec" not in metadata:
            raise CheckpointError("trajectory has no 'terrain.spec' metadata")
        spec = _json_loads(metadata["terrain.spec"], "terrain.spec")
    s = _parse_spec(spec, "invalid spec")
    steps = _json_loads(metadata.get("terrain.steps", "null"), "terrain.steps")
    if not isinstance(steps, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in steps):
        raise CheckpointError("terrain.steps must be a JSON list of integers")
    if not steps or len(steps) > MAX_TRAJECTORY_STATES:
        raise CheckpointError(f"a trajectory must hold between 1 and {MAX_TRAJECTORY_STATES} states, got {len(steps)}")
    meta = _json_loads(metadata.get("terrain.meta", "{}"), "terrain.meta")
    if not isinstance(meta, dict):
        raise CheckpointError("terrain.meta must be a JSON object")
    grouped_shapes: list[dict[str, tuple[int, ...]]] = [{} for _ in steps]
    grouped_dtypes: list[dict[str, torch.dtype]] = [{} for _ in steps]
    for key, entry in header.items():
        idx, sep, name = key.partition("/")
        if not sep or not idx.isdigit() or int(idx) >= len(steps):
            raise CheckpointError(f"unexpected tensor {key!r} in trajectory")
        grouped_shapes[int(idx)][name] = tuple(entry["shape"])
        grouped_dtypes[int(idx)][name] = _ST_DTYPES[entry["dtype"]][0]
    for i in range(len(steps)):
        _check_shapes(grouped_shapes[i], grouped_dtypes[i], s, prefix=f"state {i} (step {steps[i]}): ")
    flat = _load_safetensors(path)
    states: list[dict[str, torch.Tensor]] = [{} for _ in steps]
    for key, value in flat.items():
        idx, _, name = key.partition("/")
        states[int(idx)][name] = value
    # keep each state in the spec's key order
    order = list(zoo.parameter_shapes(s))
    states = [{k: st[k] for k in order} for st in states]
    for i, st in enumerate(states):
        _check_finite(st, prefix=f"state {i} (step {steps[i]}): ")
    return Trajectory(steps=steps, states=states, spec=s, meta=meta)
