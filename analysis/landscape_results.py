"""Results of landscape computations: a 2-D :class:`Surface` and a 1-D :class:`Line` (plain arrays, JSON-able)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .json_safe import finite_or_none


@dataclass
class Surface:
    """A 2-D loss surface; ``loss[i, j]`` is at ``(a[i], b[j])``; NaN where not computed."""

    a: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    computed: np.ndarray
    axes: str
    directions: dict = field(default_factory=dict)  # metadata: kind, seed, norms, eigenvalues, ...
    trajectory: np.ndarray | None = None  # (T, 2) projected coordinates
    trajectory_steps: list[int] | None = None
    trajectory_loss: np.ndarray | None = None  # loss at the projected points (in-plane), if computed
    markers: list[dict] | None = None  # named models placed on the plane: name, a, b, off_plane, loss, accuracy
    centre_loss: float | None = None
    centre_accuracy: float | None = None
    num_points: int = 0
    seconds: float = 0.0
    coarse_seconds: float | None = None  # time until the first full coarse surface
    evaluator: str = ""  # which evaluator computed the points (see analysis.evaluators)
    point_threads: int = 1  # threads the points were split between
    d1: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    d2: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-able form (non-finite values and missing points become ``None``)."""

        def grid(arr):
            if arr is None:
                return None
            return [[finite_or_none(v) if ok else None for v, ok in zip(row, okrow)] for row, okrow in zip(arr, self.computed)]

        return {
            "a": self.a.tolist(),
            "b": self.b.tolist(),
            "loss": grid(self.loss),
            "accuracy": grid(self.accuracy),
            "computed": self.computed.tolist(),
            "indexing": "loss[i][j] is at (a[i], b[j])",
            "axes": self.axes,
            "directions": self.directions,
            "trajectory": None if self.trajectory is None else self.trajectory.tolist(),
            "trajectory_steps": self.trajectory_steps,
            "trajectory_loss": None
            if self.trajectory_loss is None
            else [finite_or_none(v) for v in self.trajectory_loss],
            "markers": self.markers,
            "centre_loss": finite_or_none(self.centre_loss),
            "centre_accuracy": self.centre_accuracy,
            "num_points": self.num_points,
            "seconds": self.seconds,
            "coarse_seconds": self.coarse_seconds,
            "evaluator": self.evaluator,
            "point_threads": self.point_threads,
        }


@dataclass
class Line:
    """A 1-D loss profile: ``loss[k]`` at ``theta(t[k])``."""

    t: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    kind: str  # "interpolation" or "direction"
    directions: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "t": self.t.tolist(),
            "loss": [finite_or_none(v) for v in self.loss],
            "accuracy": None if self.accuracy is None else [float(v) for v in self.accuracy],
            "kind": "line",
            "mode": self.kind,
            "directions": self.directions,
            "seconds": self.seconds,
        }
