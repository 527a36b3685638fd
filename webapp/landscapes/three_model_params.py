"""Landscape parameters of the plane through three models: its two other corners, markers and tasks."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from webapp.jobs.params import Checks, JobParams
from webapp.landscapes.evaluation_sets import EvaluationSetError, format_class_lists, parse_class_lists
from webapp.landscapes.inputs import AnalysisInputs, visible_checkpoint

MAX_MARKERS = 8
CORNER_LABELS = {"checkpoint": "the checkpoint (the origin)", "checkpoint_b": "corner B"}


def _canonical_tasks(text: str) -> str:
    """"0,1, 2;5" -> "0,1,2; 5" (checked: digit classes, at most a few tasks)."""
    try:
        return format_class_lists(parse_class_lists(text))
    except EvaluationSetError as exc:
        raise ValueError(str(exc)) from None


class ThreeModelPlaneFields(JobParams):
    checkpoint_b: str = Field("", max_length=32, title="Three-model plane: B",
                              description="Slug of the plane's second corner, at (1, 0); the checkpoint is the origin.")
    checkpoint_c: str = Field("", max_length=32, title="Three-model plane: C", description="Slug of the third corner, at (0, 1).")
    markers: str = Field("", max_length=400, title="Three-model plane: markers",
                         description=f"Slugs of other models to place on the plane (merges), comma-separated; at most {MAX_MARKERS}.")
    tasks: Annotated[str, AfterValidator(_canonical_tasks)] = Field(
        "", max_length=200, title="Three-model plane: tasks",
        description='One surface per digits task, e.g. "0,1,2,3,4; 5,6,7,8,9"; empty: the data set above.')

    def task_count(self) -> int:
        return len(parse_class_lists(self.tasks))


def _same_model(a, b) -> bool:
    """The same catalog checkpoint, or one with the same weights file: the plane would collapse to a line."""
    return a.slug == b.slug or bool(getattr(a, "sha256", "") and a.sha256 == getattr(b, "sha256", ""))


def check_three_models(params: ThreeModelPlaneFields, ctx: Checks, inputs: AnalysisInputs) -> list:
    """The corners exist and share the origin's architecture; the markers too; digits tasks fit. Returns the markers."""
    from analysis import data, zoo

    origin = inputs.checkpoint
    corners = {"checkpoint": origin}
    for name in ("checkpoint_b", "checkpoint_c"):
        other = inputs.checkpoints.get(name)  # of the origin's architecture (checked with the inputs)
        if other is None:
            ctx.error(name, "the plane through three models needs this corner")
            continue
        for earlier_name, earlier in corners.items():
            if _same_model(other, earlier):
                ctx.error(name, f"is the same model as {CORNER_LABELS[earlier_name]}: the plane needs three different models")
                break
        corners[name] = other
    slugs = [s.strip() for s in params.markers.split(",") if s.strip()]
    if len(slugs) > MAX_MARKERS:
        ctx.error("markers", f"at most {MAX_MARKERS} markers")
        return []
    markers = []
    for slug in slugs:
        marker = visible_checkpoint(slug, "markers", ctx)
        if marker is not None and marker.spec != origin.spec:
            ctx.error("markers", f"{marker.name!r} has a different architecture from the checkpoint")
        markers.append(marker)
    if params.tasks:
        try:
            zoo.check_compatible(origin.spec, data.describe("digits"))
        except zoo.SpecError as exc:
            ctx.error("tasks", f"digits tasks do not fit the checkpoint: {exc}")
    return markers


def three_model_params(params: ThreeModelPlaneFields, inputs: AnalysisInputs, markers: list) -> dict:
    return {"checkpoint_b": inputs.checkpoints["checkpoint_b"].slug, "checkpoint_c": inputs.checkpoints["checkpoint_c"].slug,
            "markers": [m.slug for m in markers], "tasks": params.tasks}
