"""BatchNorm in eval mode folded into the layer before it, for landscape points.

A BatchNorm with running statistics is a fixed affine map per channel,
``y = scale * x + shift``, as long as the point's directions leave its own scale
and shift at the centre (they do unless the plane includes biases).  Applied to
the output of a ``Conv`` or ``Linear`` whose weights move with the point,

    scale * (W(c) x + b(c)) + shift = (scale W(c)) x + (scale b(c) + shift),

and ``scale W(c) = scale W_0 + sum_k c_k scale D_k``: the centre and the
directions are scaled once per plane, after which every point's forward pass
skips the BatchNorm entirely (one pass over the activations per pair, in a
ResNet one per convolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

FOLDABLE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class Fold:
    layer: str  # module name of the Conv/Linear
    norm: str  # module name of the BatchNorm after it
    weight: str  # parameter names of the layer's weight and bias (None: the layer has no bias)
    bias: str | None
    scale: torch.Tensor  # (channels,)
    shift: torch.Tensor


def fixed_affine(bn: _BatchNorm, centre: Mapping[str, torch.Tensor], directions: Sequence[Mapping[str, torch.Tensor]],
                 names_by_id: Mapping[int, str], dtype) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(scale, shift)`` per channel of an eval-mode BatchNorm whose parameters do not move; None otherwise."""
    if bn.training or not bn.track_running_stats or bn.running_mean is None:
        return None
    params = [names_by_id.get(id(p)) for p in bn.parameters(recurse=False)]
    if any(n is None or n not in centre or any(bool(d[n].any()) for d in directions) for n in params):
        return None  # its scale or shift moves with the point: it stays a layer
    scale = torch.rsqrt(bn.running_var.to(dtype) + bn.eps)
    if bn.affine:
        scale = scale * centre[names_by_id[id(bn.weight)]].to(dtype)
    shift = -bn.running_mean.to(dtype) * scale
    if bn.affine:
        shift = shift + centre[names_by_id[id(bn.bias)]].to(dtype)
    return scale, shift


def plan(calls, centre, directions, names_by_id: Mapping[int, str], dtype, skip: set[str]) -> list[Fold]:
    """Every (layer, BatchNorm) pair of a traced forward pass (``(name, module, inputs, output)`` per leaf call)
    where the BatchNorm reads the layer's fresh output and can be folded into it."""
    times_called: dict[int, int] = {}
    for _, m, _, _ in calls:
        times_called[id(m)] = times_called.get(id(m), 0) + 1
    folds = []
    for (name, layer, _, out), (norm_name, bn, inputs, _) in zip(calls, calls[1:]):
        if type(layer) not in FOLDABLE_LAYERS or not isinstance(bn, _BatchNorm) or name in skip:
            continue
        if not inputs or inputs[0] is not out or times_called[id(layer)] != 1 or times_called[id(bn)] != 1:
            continue
        if isinstance(layer, nn.Linear) and out.dim() != 2:
            continue  # BatchNorm1d's channels are dim 1, a Linear's features the last dim: only equal in 2-D
        weight = names_by_id.get(id(layer.weight))
        bias = names_by_id.get(id(layer.bias)) if layer.bias is not None else None
        if weight not in centre or (layer.bias is not None and bias not in centre):
            continue
        affine = fixed_affine(bn, centre, directions, names_by_id, dtype)
        if affine is not None:
            folds.append(Fold(name, norm_name, weight, bias, *affine))
    return folds


def fold_flat(folds: Sequence[Fold], offsets: Mapping[str, int], shapes: Mapping[str, torch.Size], theta: torch.Tensor,
              directions: Sequence[torch.Tensor]) -> None:
    """Scale the folded layers' weights (and biases, plus the shift) in the flat centre and directions, in place."""
    for f in folds:
        start = offsets[f.weight]
        rows = shapes[f.weight][0]
        for k, flat in enumerate([theta, *directions]):
            flat[start : start + shapes[f.weight].numel()].view(rows, -1).mul_(f.scale[:, None])
            if f.bias is not None:
                b = flat[offsets[f.bias] : offsets[f.bias] + rows]
                b.mul_(f.scale)
                if k == 0:
                    b.add_(f.shift)


def fold_replica(folds: Sequence[Fold], replica: nn.Module) -> None:
    """Make a replica whose flat parameters were folded compute the same function: the BatchNorms pass
    their input through, and a layer without a bias gets the shift as a fixed one."""
    for f in folds:
        layer = replica.get_submodule(f.layer)
        if f.bias is None:
            layer.bias = nn.Parameter(f.shift.clone(), requires_grad=False)
        replica.get_submodule(f.norm).forward = _identity


def _identity(x):
    return x
