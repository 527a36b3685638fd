"""Events of the sweep job kind (see webapp.jobs.event_types)."""

from __future__ import annotations

from typing import Any

from webapp.jobs.event_types import EventPayload


class SweepHeader(EventPayload):
    """The grid before any run: axes, seeds, budget and what the phases mean (webapp.phases.selectors.sweep_header)."""

    title: str
    task: str
    task_options: dict[str, Any]
    x: dict[str, Any]
    y: dict[str, Any]
    x_title: str
    y_title: str
    seeds: list[int]
    budget: int
    budget_unit: str
    total_runs: int
    metrics: list[str]
    legend: dict[str, Any]


class SweepRunDone(EventPayload):
    """One (cell, seed) run finished or failed."""

    i: int
    j: int
    seed: int
    status: str
    done: int
    total: int
    error: str | None = None
    final: dict[str, Any] | None = None
    steps_to_train_90: int | None = None
    steps_to_test_90: int | None = None
    seconds: float | None = None


class SweepCellDone(EventPayload):
    """A cell evaluated over its seeds (analysis.phases.cells.CellResult.to_dict), or a note that none of them ran."""

    i: int
    j: int
    phase: dict[str, Any]
    note: str | None = None
    key: str | None = None
    x: Any = None
    y: Any = None
    seeds: list[int] | None = None
    metrics: dict[str, Any] | None = None
    pair_metrics: dict[str, Any] | None = None
    pairs: list[dict[str, Any]] | None = None
    grokking: dict[str, Any] | None = None
    taxonomy: dict[str, Any] | None = None
    spread: dict[str, Any] | None = None
    seconds: float | None = None
    run_keys: list[str] | None = None


SWEEP_EVENTS = {"sweep": SweepHeader, "run": SweepRunDone, "cell": SweepCellDone}
