"""The affine plane through three models: the classic picture of merging.

Origin ``A``, axes ``d1 = B - A`` and ``d2 = C - A``, not normalised, so ``A``
sits at (0, 0), ``B`` at (1, 0) and ``C`` at (0, 1) (Garipov et al. 2018 drew
mode connectivity this way; Ilharco et al. 2023 and Yadav et al. 2023 draw a base
and two fine-tunes so).  Any other model (a merge, another relative) is placed
by least squares in that basis; its distance from the plane says how much of
it the picture cannot show.  A task-arithmetic merge ``A + lam (B - A) +
lam (C - A)`` lies in the plane at (lam, lam).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["three_model_directions", "project_markers", "default_span"]


def three_model_directions(
    origin: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], c: Mapping[str, torch.Tensor], names: Sequence[str]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    for label, state in (("second model", b), ("third model", c)):
        missing = [n for n in names if n not in state]
        if missing:
            raise ValueError(f"the {label} lacks parameters {missing[:3]}")
        for n in names:
            if tuple(state[n].shape) != tuple(origin[n].shape):
                raise ValueError(f"the {label}'s {n!r} has shape {tuple(state[n].shape)}, the origin's {tuple(origin[n].shape)}")
    d1 = {n: b[n].detach().to(origin[n]) - origin[n] for n in names}
    d2 = {n: c[n].detach().to(origin[n]) - origin[n] for n in names}
    return d1, d2


def _flat(d: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1).double() for n in names])


def project_markers(
    origin: Mapping[str, torch.Tensor],
    d1: Mapping[str, torch.Tensor],
    d2: Mapping[str, torch.Tensor],
    markers: Mapping[str, Mapping[str, torch.Tensor]],
    names: Sequence[str],
) -> list[dict]:
    """``[{"name", "a", "b", "off_plane", "relative_off_plane"}]``: least-squares coordinates of each marker."""
    basis = torch.stack([_flat(d1, names), _flat(d2, names)], dim=1)
    if torch.linalg.matrix_rank(basis) < 2:
        raise ValueError("the three models do not span a plane (two of them coincide or are collinear)")
    o = _flat(origin, names)
    out = []
    for name, state in markers.items():
        offset = _flat({n: state[n] for n in names}, names) - o
        coords = torch.linalg.lstsq(basis, offset.unsqueeze(1)).solution[:, 0]
        residual = float((offset - basis @ coords).norm())
        scale = float(offset.norm())
        out.append({"name": str(name), "a": float(coords[0]), "b": float(coords[1]), "off_plane": residual,
                    "relative_off_plane": residual / scale if scale > 0 else 0.0})
    return out


def default_span(markers: Sequence[dict], margin: float = 0.25) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square that holds the three models and every marker, with a margin."""
    a = [0.0, 1.0] + [m["a"] for m in markers]
    b = [0.0, 1.0] + [m["b"] for m in markers]
    return (min(a) - margin, max(a) + margin), (min(b) - margin, max(b) + margin)
