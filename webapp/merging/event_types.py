"""Events of the merge and greedy-merge job kinds (see webapp.jobs.event_types)."""

from __future__ import annotations

from typing import Any

from webapp.jobs.event_types import EventPayload, Record


class MergeStart(EventPayload):
    method: str
    method_label: str
    citation: str
    knob: str
    knob_label: str
    values: list[float]
    tasks: list[str]
    models: list[str]
    base: str | None


class MergePoint(EventPayload):
    """The merge at one value of the method's knob, scored on every task."""

    index: int
    total: int
    value: float
    results: dict[str, Any]
    score: float | None


class MergeCheckpoint(EventPayload):
    slug: str
    name: str
    value: float
    results: dict[str, Any]
    url: str
    tree_url: str
    plane_url: str | None


MERGE_EVENTS = {"start": MergeStart, "point": MergePoint, "checkpoint": MergeCheckpoint}


class GreedyStart(EventPayload):
    pool: list[str]
    base: str
    tasks: list[str]
    lam: float
    runs: list[str]


class GreedyRound(Record):
    round: int
    partner: str
    kinship: float | None
    pool_kinship: float | None
    score: float | None
    accepted: bool
    members: list[str]


class GreedyRun(EventPayload):
    """One greedy merge to its end: by kinship, or with random partners (the baseline)."""

    run: str
    strategy: str
    start: str
    start_score: float | None
    final_score: float | None
    members: list[str]
    rounds: list[GreedyRound]


GREEDY_EVENTS = {"start": GreedyStart, "run": GreedyRun}
