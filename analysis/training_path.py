"""The path a training run took through the landscape versus the straight line from start to end.

:func:`path_versus_line` evaluates the training loss at each snapshot of a
trajectory and along the segment ``theta(t) = (1 - t) theta_0 + t theta_T``
(:func:`analysis.landscape.line`).  Both are placed on one axis: a snapshot's
``t`` is its projection on the start-to-end direction,
``<theta_k - theta_0, theta_T - theta_0> / ||theta_T - theta_0||^2`` (0 at the
start, 1 at the end), so the two curves are directly comparable; the
snapshot's ``distance_from_line`` says how far it strayed from the segment.
The loss along a typical trajectory lies below the straight line's in the
middle (Goodfellow et al. 2015 found the straight line from initialisation to
solution nearly monotone and convex; the trajectory cuts lower).
"""

from __future__ import annotations

import copy
import math
from typing import Mapping, Sequence

import torch
from torch import nn

from . import landscape, metrics
from .json_safe import finite_or_none

__all__ = ["path_versus_line"]


def _flat(state: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    return torch.cat([state[n].detach().reshape(-1).double().cpu() for n in names])


def path_versus_line(
    model: nn.Module,
    states: Sequence[Mapping[str, torch.Tensor]],
    steps: Sequence[int],
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    line_points: int = 21,
) -> dict:
    """Loss along the trajectory ``states`` (at ``steps``) and along the straight line from first to last.

    ``model`` gives the architecture (its weights are not used).  Returns a
    JSON-able ``{"trajectory": {"step", "t", "distance_from_line", "loss"},
    "line": {"t", "loss"}, "distance"}`` (``distance``: ``||theta_T - theta_0||``).
    """
    if len(states) != len(steps) or len(states) < 2:
        raise ValueError("need at least two states, one per step")
    work = copy.deepcopy(model).eval()
    names = [n for n, _ in work.named_parameters()]
    start, end = _flat(states[0], names), _flat(states[-1], names)
    direction = end - start
    length2 = float(direction.dot(direction))
    X, y = data
    t_values, distances, losses = [], [], []
    for state in states:
        offset = _flat(state, names) - start
        t = float(offset.dot(direction)) / length2 if length2 > 0 else 0.0
        t_values.append(t)
        distances.append(float((offset - t * direction).norm()))
        work.load_state_dict(dict(state), strict=True)
        losses.append(finite_or_none(metrics.evaluate(work, X, y)[0]))
    work.load_state_dict(dict(states[0]), strict=True)
    line = landscape.line(work, data, end=dict(states[-1]), steps=line_points, span=(0.0, 1.0))
    return {
        "trajectory": {"step": [int(s) for s in steps], "t": t_values, "distance_from_line": distances, "loss": losses},
        "line": {"t": [float(t) for t in line.t], "loss": [finite_or_none(v) for v in line.loss]},
        "distance": math.sqrt(length2),
    }
