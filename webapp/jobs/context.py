"""What a running job kind sees: its parameters, its device, and a way to report."""

from __future__ import annotations

import time

from webapp.jobs.events import job_event_append
from webapp.jobs.models import Job, JobEvent


class JobCancelled(Exception):
    """Raised inside a running job once its owner asked to cancel it."""


class JobContext:
    # Checking the cancel flag costs a query; once per this many seconds is plenty.
    CANCEL_CHECK_SECONDS = 0.5

    def __init__(self, job: Job, device: str = "cpu"):
        self.job = job
        self.params = job.params
        self.device = device
        self._last_cancel_check = 0.0

    def emit(self, kind: str, payload: dict, progress: float | None = None) -> None:
        """Persist and publish one progress event; raises JobCancelled when asked to stop."""
        self.raise_if_cancelled()
        job_event_append(job=self.job, kind=kind, payload=payload, progress=progress)

    def raise_if_cancelled(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_cancel_check < self.CANCEL_CHECK_SECONDS:
            return
        self._last_cancel_check = now
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    def previous_payloads(self, kind: str) -> list[dict]:
        """Payloads of `kind` persisted by earlier attempts: what a resumable kind may skip."""
        return list(JobEvent.objects.filter(job=self.job, kind=kind).order_by("seq").values_list("payload", flat=True))
