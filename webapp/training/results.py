"""The result of the train job kind: the checkpoint it saved, its final metrics and its sharpness summary."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from webapp.training.event_types import SharpnessSummary, TrainMetrics


class TrainResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str
    checkpoint_name: str
    final: TrainMetrics | dict[str, Any]  # {} when no metrics were evaluated
    spec: dict[str, Any]
    sharpness: SharpnessSummary | None
