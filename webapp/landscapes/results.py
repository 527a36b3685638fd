"""The results of the landscape, Hessian and connectivity job kinds: one typed shape per kind.

The page (on the final status event), the exports, the API and the phase metrics
read these shapes; `job_finish` refuses a result that does not fit its kind's model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from analysis.curvature_results import HessianSpectrum
from webapp.landscapes.event_types import ConnectivityAlignment, InterpolationCurve, Marker


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaneResult(_Result):
    """A loss plane (analysis.landscape_results.Surface.to_dict) and where it came from."""

    mode: Literal["plane"]
    a: list[float]
    b: list[float]
    loss: list[list[float | None]]
    accuracy: list[list[float | None]] | None
    computed: list[list[bool]]
    indexing: str
    axes: str
    directions: dict[str, Any]
    trajectory: list[list[float]] | None = None
    trajectory_steps: list[int] | None = None
    trajectory_loss: list[float | None] | None = None
    markers: list[Marker] | None = None
    centre_loss: float | None = None
    centre_accuracy: float | None = None
    num_points: int
    seconds: float
    coarse_seconds: float | None = None
    evaluator: str = ""
    point_threads: int = 1
    checkpoint: str
    checkpoint_name: str
    eval_size: int
    device: str
    # A plane through three models: one surface per task (the first one is also spread at the top level).
    tasks: dict[str, dict[str, Any]] | None = None
    task_names: list[str] | None = None
    corners: list[str] | None = None
    # A plane fanned out over workers: how many parts and which workers took them.
    fanout: dict[str, Any] | None = None


class LineResult(_Result):
    """A loss line (analysis.landscape_results.Line.to_dict): towards another checkpoint or along a direction."""

    mode: Literal["line"]
    kind: Literal["line"]
    t: list[float]
    loss: list[float | None]
    accuracy: list[float] | None
    directions: dict[str, Any]
    seconds: float
    checkpoint: str
    checkpoint_name: str
    eval_size: int
    device: str
    # A line fanned out over workers: time to the coarse curve, how many parts and which workers took them.
    coarse_seconds: float | None = None
    fanout: dict[str, Any] | None = None


# Told apart by the job's mode (which replaces a line's own interpolation/direction mode).
LandscapeResult = Annotated[Union[PlaneResult, LineResult], Field(discriminator="mode")]


class HessianResult(HessianSpectrum):
    """The Hessian spectrum (the one shape of analysis.curvature_results) of a catalog checkpoint."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str
    checkpoint_name: str
    eval_size: int
    device: str
    fanout: dict[str, Any] | None = None  # a density fanned out over workers: how many parts and which workers took them


class ConnectivityResult(_Result):
    checkpoint: str
    checkpoint_b: str
    names: list[str]
    eval_size: int
    device: str
    curves: dict[str, InterpolationCurve]  # "naive" and "aligned"
    alignment: ConnectivityAlignment
    barriers: dict[str, float | None]
