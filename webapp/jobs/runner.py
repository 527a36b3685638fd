"""Run one job: the only code path between a Celery task and a job kind."""

import logging

from django.db import transaction
from django.utils import timezone

from webapp.jobs import kinds
from webapp.jobs.context import JobCancelled, JobContext
from webapp.jobs.events import job_event_append
from webapp.jobs.services import job_finish
from webapp.jobs.models import Job, JobStatus

logger = logging.getLogger(__name__)


def run_job(job_id: int, *, device: str = "cpu") -> str:
    """Run job `job_id` to a final status and return that status.

    Idempotent: a finished job is left alone, so a redelivered task does nothing;
    a job whose worker died mid-run starts a new attempt (its kind may resume from
    the events already stored).
    """
    with transaction.atomic():
        # Locked so a cancel landing between our read and our write cannot be
        # overwritten by "running" (SQLite serialises writers anyway).
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s vanished before it ran", job_id)
            return "missing"
        if job.is_finished:
            return job.status
        if job.cancel_requested:
            job_finish(job=job, status=JobStatus.CANCELLED)
            return JobStatus.CANCELLED
        attempt = job.attempts + 1
        job_event_append(
            job=job,
            kind="status",
            payload={"status": JobStatus.RUNNING, "attempt": attempt, "device": device},
            status=JobStatus.RUNNING,
            attempts=attempt,
            device=device,
            started_at=timezone.now(),
        )
    try:
        result = kinds.get(job.kind).run(JobContext(job, device=device))
    except JobCancelled:
        job_finish(job=job, status=JobStatus.CANCELLED)
    except Exception as exc:
        logger.exception("job %s (%s) failed", job.slug, job.kind)
        job_finish(job=job, status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        if result is not kinds.DEFERRED:
            job_finish(job=job, status=JobStatus.SUCCEEDED, result=result or {})
    return job.status
