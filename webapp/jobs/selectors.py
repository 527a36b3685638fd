"""Reads on jobs: who may see what, snapshots for live clients."""

from django.db.models import Q, QuerySet

from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobEvent, JobStatus


def job_is_visible(*, job: Job, user) -> bool:
    if job.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return True
    return bool(user and user.is_authenticated and (user.is_staff or job.owner_id == user.pk))


def job_get_visible(*, slug: str, user) -> Job | None:
    """The job behind a permalink, or None when it does not exist or `user` may not see it.

    The two cases look the same from outside, so private links do not leak.
    """
    job = Job.objects.select_related("owner", "experiment").filter(slug=slug).first()
    if job is None or not job_is_visible(job=job, user=user):
        return None
    return job


def jobs_of_user(*, user) -> QuerySet[Job]:
    return Job.objects.filter(owner=user).select_related("experiment").order_by("-created_at")


def jobs_running_of_user(*, user) -> QuerySet[Job]:
    return jobs_of_user(user=user).filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])


def jobs_public(*, kind: str | None = None) -> QuerySet[Job]:
    jobs = Job.objects.filter(visibility=Visibility.PUBLIC)
    return jobs.filter(kind=kind) if kind else jobs


def jobs_of_experiment(*, experiment, user) -> QuerySet[Job]:
    jobs = Job.objects.filter(experiment=experiment)
    if user and user.is_authenticated and user.is_staff:
        return jobs
    visible = Q(visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
    if user and user.is_authenticated:
        visible |= Q(owner=user)
    return jobs.filter(visible)


def job_state(job: Job) -> dict:
    return {
        "slug": job.slug,
        "kind": job.kind,
        "title": job.title,
        "status": job.status,
        "progress": job.progress,
        "device": job.device,
        "attempts": job.attempts,
        "error": job.error,
        "result": job.result,
        "last_seq": job.last_seq,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def job_events_after(*, job: Job, after: int = 0, limit: int | None = None) -> list[dict]:
    events = JobEvent.objects.filter(job=job, seq__gt=after).order_by("seq")
    if limit:
        events = events[:limit]
    return [event.as_message() for event in events]


def job_snapshot(*, job_id: int, after: int = 0) -> dict:
    """Everything a (re)connecting client needs: current state plus every event after `after`."""
    job = Job.objects.get(pk=job_id)
    return {"job": job_state(job), "events": job_events_after(job=job, after=after)}


def jobs_running():
    """Jobs a worker is computing now, oldest first (the staff status page)."""
    return Job.objects.filter(status=JobStatus.RUNNING).select_related("owner").order_by("started_at")
