"""Events of the landscape, Hessian and connectivity job kinds (see webapp.jobs.event_types)."""

from __future__ import annotations

from typing import Any

from analysis.curvature_results import Density, Eigenvalues, Trace
from webapp.jobs.event_types import EventPayload, OpenPayload, Record

# --------------------------------------------------------------------------- landscape


class Marker(OpenPayload):
    """A model marked on a plane through three models: where it lies and (once evaluated) its loss."""

    name: str
    a: float
    b: float
    off_plane: float | None = None
    relative_off_plane: float | None = None
    role: str | None = None
    loss: float | None = None
    accuracy: float | None = None


class PlaneStart(EventPayload):
    """A plane's axes, before any point: the browser sizes its grid from it."""

    a: list[float]
    b: list[float]
    total: int
    done: int
    levels: int
    strides: list[tuple[int, int]]  # (row stride, column stride) per level, coarse first (analysis.landscape_grid)
    axes: str
    directions: dict[str, Any]
    trajectory: list[list[float]] | None = None
    trajectory_steps: list[int] | None = None
    markers: list[Marker] | None = None
    task: str | None = None  # a plane through three models: one surface per task


class GridPoint(Record):
    i: int
    j: int
    a: float
    b: float
    loss: float | None
    accuracy: float | None = None


class LinePoint(Record):
    k: int
    t: float
    loss: float | None
    accuracy: float | None = None


class LandscapePoints(EventPayload):
    """A batch of evaluated points: a plane's (with its refinement level) or a line's."""

    points: list[GridPoint] | list[LinePoint]
    done: int
    total: int
    level: int | None = None
    levels: int | None = None
    task: str | None = None


class PlaneTrajectory(EventPayload):
    trajectory: list[list[float]]
    trajectory_steps: list[int]
    trajectory_loss: list[float | None] | None = None


class PlaneMarkers(EventPayload):
    task: str
    markers: list[Marker] | None = None


LANDSCAPE_EVENTS = {"start": PlaneStart, "points": LandscapePoints, "trajectory": PlaneTrajectory, "markers": PlaneMarkers}

# --------------------------------------------------------------------------- hessian


class HessianStarted(EventPayload):
    num_parameters: int
    loss: float | None


# The parts of the one Hessian shape (analysis.curvature_results), each streamed as it is ready.
class HessianEigenvalues(Eigenvalues, EventPayload):
    pass


class HessianTrace(Trace, EventPayload):
    pass


class HessianDensity(Density, EventPayload):
    pass


HESSIAN_EVENTS = {"started": HessianStarted, "eigenvalues": HessianEigenvalues, "trace": HessianTrace,
                  "density": HessianDensity}

# --------------------------------------------------------------------------- connectivity


class InterpolationCurve(Record):
    """The loss along the straight path between the two models (analysis.connectivity.Interpolation.to_dict)."""

    t: list[float]
    loss: list[float | None]
    accuracy: list[float] | None
    barrier_height: float | None
    accuracy_barrier: float | None = None
    seconds: float


class ConnectivityCurve(InterpolationCurve, EventPayload):
    label: str  # "naive" (as trained) or "aligned" (after weight matching)


class ConnectivityAlignment(EventPayload):
    iterations: int
    seconds: float
    changed_units: dict[str, int]


CONNECTIVITY_EVENTS = {"curve": ConnectivityCurve, "alignment": ConnectivityAlignment}
