"""Terrain's Python client: log from a training script, analyse on Terrain's workers.

    import terrain
    terrain.init(url="http://127.0.0.1:8000", token="trn_...")
    run = terrain.Run(experiment="digits", name="baseline")
    run.log(step=step, loss=loss); run.log_checkpoint(model, step=step)
    job = run.landscape(); job.wait(); arrays = job.result(); print(job.url)
"""

from __future__ import annotations

from typing import Any

from terrain import lineage
from terrain.errors import (
    AuthenticationError,
    Conflict,
    JobFailed,
    NotFound,
    PermissionDenied,
    RateLimited,
    TerrainError,
    UploadError,
    ValidationError,
)
from terrain.jobs import Job, submit
from terrain.run import Run
from terrain.session import Session, init

__version__ = "0.1.0"


def sweep(*, session: Session | None = None, **params: Any) -> Job:
    """A phase-diagram sweep (the `sweep` job): the Phase diagrams form's fields, e.g. preset="grokking"."""
    return submit("sweep", session=session, **params)


def job(slug: str, *, session: Session | None = None) -> Job:
    """A handle on an existing job by its slug."""
    from terrain.session import current

    session = session or current()
    return Job(session.get(f"/api/jobs/{slug}/"), session)


__all__ = [
    "AuthenticationError", "Conflict", "Job", "JobFailed", "NotFound", "PermissionDenied", "RateLimited", "Run", "Session",
    "TerrainError", "UploadError", "ValidationError", "init", "job", "lineage", "submit", "sweep",
]
