"""A merge method's main knob swept over a range, scored on every task.

The curve people look at when they tune a merge: per-task loss and accuracy of
the merged model as lambda (task arithmetic, DARE), density (TIES) or the
mixing weight (averages) moves.  ``on_progress`` gets one event per knob value
as soon as it is scored, so a caller can draw the curve live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from .evaluation import Task, evaluate_state, model_with_state, score
from .methods import get_method, prepare
from .state_dicts import StateDict

__all__ = ["SweepPoint", "Sweep", "knob_values", "sweep", "sweep_prepared"]


@dataclass
class SweepPoint:
    value: float
    results: dict[str, dict[str, float | None]]
    score: float

    def to_dict(self) -> dict:
        return {"value": self.value, "results": self.results, "score": self.score}


@dataclass
class Sweep:
    method: str
    knob: str
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def best(self) -> SweepPoint:
        return max(self.points, key=lambda p: p.score)

    def to_dict(self) -> dict:
        return {"method": self.method, "knob": self.knob, "points": [p.to_dict() for p in self.points],
                "best": self.best.to_dict() if self.points else None}


def knob_values(method: str, steps: int, low: float | None = None, high: float | None = None) -> list[float]:
    knob = get_method(method).knob
    lo = knob.low if low is None else low
    hi = knob.high if high is None else high
    return [float(v) for v in np.linspace(lo, hi, steps)]


def sweep(
    method: str,
    *,
    base: StateDict | None,
    models: Sequence[StateDict],
    tasks: Sequence[Task],
    values: Sequence[float],
    spec: dict | None = None,
    template: nn.Module | None = None,
    params: Mapping | None = None,
    on_progress: Callable[[dict], object] | None = None,
) -> Sweep:
    """Score the merge at every knob value (in the given order) on every task."""
    merged_at = prepare(method, base=base, models=models, spec=spec, params=params)
    return sweep_prepared(merged_at, method, tasks=tasks, values=values, spec=spec, template=template, on_progress=on_progress)


def sweep_prepared(
    merged_at: Callable[[float], dict],
    method: str,
    *,
    tasks: Sequence[Task],
    values: Sequence[float],
    spec: dict | None = None,
    template: nn.Module | None = None,
    on_progress: Callable[[dict], object] | None = None,
) -> Sweep:
    """:func:`sweep` with the method already prepared (``methods.prepare``), to reuse it afterwards."""
    result = Sweep(method=method, knob=get_method(method).knob.name)
    if template is None and spec is not None:
        template = model_with_state(merged_at(float(values[0])), spec=spec)  # built once, not per point
    for k, value in enumerate(values):
        results = evaluate_state(merged_at(float(value)), tasks, template=template)
        point = SweepPoint(float(value), results, score(results))
        result.points.append(point)
        if on_progress is not None:
            on_progress({"type": "point", "index": k, "total": len(values), **point.to_dict()})
    return result
