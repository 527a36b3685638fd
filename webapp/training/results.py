"""The result of the train job kind: the checkpoint it saved, its metrics (final and along the way) and its sharpness."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from webapp.training.event_types import SharpnessMeasured, SharpnessSummary, TrainMetrics


class TrainResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str
    checkpoint_name: str
    final: TrainMetrics | dict[str, Any]  # {} when no metrics were evaluated
    spec: dict[str, Any]
    sharpness: SharpnessSummary | None
    # every evaluation and sharpness measurement, for the CSV export (empty in results stored before they were kept)
    history: list[TrainMetrics] = []
    sharpness_history: list[SharpnessMeasured] = []
