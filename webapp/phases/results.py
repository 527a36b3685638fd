"""The result of the sweep job kind: the header, every cell and every run's final numbers (selectors.sweep_summary)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from webapp.phases.event_types import SweepCellDone, SweepHeader


class SweepRunFinal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    i: int
    j: int
    seed: int
    status: str
    attempts: int
    final: dict[str, Any] | None
    steps_to_train_90: int | None
    steps_to_test_90: int | None


class SweepResult(SweepHeader):
    spec: dict[str, Any]
    cells: list[SweepCellDone]
    runs: list[SweepRunFinal]
