"""Lineage recovery from weights (the `lineage_recovery` job)."""

from __future__ import annotations

from typing import Any

from terrain.jobs import Job, submit
from terrain.session import Session


def recover(*, session: Session | None = None, **params: Any) -> Job:
    """Recover directed family trees from weights: `source="experiment", source_experiment=<slug>` or a synthetic zoo."""
    return submit("lineage_recovery", session=session, **params)
