"""A state dict against a zoo spec: the tensors it must hold, their shapes and dtypes, finite values."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from . import zoo
from .weight_files import CheckpointError, SpecNeeded, json_loads

FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def state_dict_of(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU clones of a model's (or a mapping's) tensors."""
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def architecture_difference(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> str | None:
    """How ``b``'s tensors differ from ``a``'s in names or shapes (the first difference), or None when they match."""
    for lacking, holder, whose in ((b, a, "the second"), (a, b, "the first")):
        names = [n for n in holder if n not in lacking]
        if names:
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            return f"{whose} lacks tensor {names[0]!r}{more}"
    for name, t in a.items():
        if tuple(b[name].shape) != tuple(t.shape):
            return f"tensor {name!r} is {list(t.shape)} in the first, {list(b[name].shape)} in the second"
    return None


def parse_spec(spec: Any, where: str) -> dict:
    try:
        return zoo.validate_spec(spec)
    except zoo.SpecError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def spec_of_file(metadata: Mapping[str, str], spec: Any, missing: str) -> dict:
    """The validated spec: the caller's, else the file's ``terrain.spec`` metadata (``missing`` if it has none)."""
    if spec is None:
        if "terrain.spec" not in metadata:
            raise SpecNeeded(missing)
        spec = json_loads(metadata["terrain.spec"], "terrain.spec")
    return parse_spec(spec, "invalid spec")


def check_shapes(
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
        elif dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{prefix}tensor {name!r} must be floating point, got {dtype}")


def check_finite(state: Mapping[str, torch.Tensor], prefix: str = "") -> None:
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n_nan = int(torch.isnan(t).sum())
            n_inf = int(torch.isinf(t).sum())
            raise CheckpointError(f"{prefix}tensor {name!r} contains {n_nan} NaN and {n_inf} Inf values")


def check_state_dict(state: Mapping[str, torch.Tensor], spec: dict) -> dict:
    """Check a state dict against a spec (keys, shapes, dtypes, finiteness).

    Returns the normalised spec; raises :class:`CheckpointError`.
    """
    s = parse_spec(spec, "invalid spec")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor")
    check_shapes({k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()}, s)
    check_finite(state)
    return s


def build_with_state(spec: dict, state: Mapping[str, torch.Tensor]) -> nn.Module:
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
