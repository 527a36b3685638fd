"""Events of the train job kind (see webapp.jobs.event_types)."""

from __future__ import annotations

from typing import Any

from webapp.jobs.event_types import EventPayload, Record


class SharpnessSettings(Record):
    threshold: float
    threshold_label: str
    tracked: str
    every: int
    batch_size: int


class TrainStarted(EventPayload):
    spec: dict[str, Any]
    total_steps: int
    train_size: int
    test_size: int
    sharpness: SharpnessSettings | None = None


class TrainMetrics(EventPayload):
    step: int | None
    epoch: float | None
    total_steps: int | None
    train_loss: float | None
    train_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None


class SharpnessMeasured(EventPayload):
    """One measurement of the top Hessian eigenvalue during training (None where it was not measured)."""

    step: int | None
    sharpness: float | None
    threshold: float | None
    preconditioned_sharpness: float | None
    trace: float | None
    trace_stderr: float | None
    matvecs: int | None
    converged: bool | None


class SharpnessSummary(EventPayload):
    sharpness_start: float | None
    sharpness_end: float | None
    sharpness_max: float | None
    progressive_sharpening: float | None
    eos_step: int | None
    frac_above_2_over_eta: float | None
    threshold: float
    tracked: str
    measurements: int
    matvecs: int
    seconds: float


class PathAlong(Record):
    step: list[int]
    t: list[float | None]
    distance_from_line: list[float | None]
    loss: list[float | None]


class PathLine(Record):
    t: list[float]
    loss: list[float | None]


class TrainingPath(EventPayload):
    """How far the training path strays from the straight line between its ends."""

    trajectory: PathAlong
    line: PathLine
    distance: float | None


class TrainCheckpoint(EventPayload):
    slug: str
    name: str
    url: str
    snapshots: int


TRAIN_EVENTS = {"started": TrainStarted, "metrics": TrainMetrics, "sharpness": SharpnessMeasured,
                "sharpness_summary": SharpnessSummary, "path": TrainingPath, "checkpoint": TrainCheckpoint}
