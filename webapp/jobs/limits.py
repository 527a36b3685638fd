"""Per-user limits on job submissions, checked where every job is created (jobs.services.job_create).

Two limits, both set in settings (env-overridable): how many of a user's jobs may be queued
or running at once, and how many jobs a user may submit per minute.  Views answer
LimitExceeded with HTTP 429 and a Retry-After header.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

WINDOW_SECONDS = 60
# A full queue frees up when a job finishes: no exact time, so ask the client to come back in a while.
ACTIVE_RETRY_SECONDS = 30


class LimitExceeded(Exception):
    """A submission over a per-user limit: `field` and `message` for the error, `retry_after` in seconds."""

    def __init__(self, *, field: str, message: str, retry_after: int):
        self.field = field
        self.message = message
        self.retry_after = int(retry_after)
        super().__init__(message)

    def as_errors(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


def with_retry_after(response, limit: LimitExceeded):
    """`response` (a 429) with the Retry-After header clients and proxies understand."""
    response["Retry-After"] = str(limit.retry_after)
    return response


def check_job_submission(*, user) -> None:
    """Raise LimitExceeded when `user` may not submit another job now (anonymous: no limit here;
    every entry point that takes a job requires a login)."""
    from webapp.jobs.models import Job, JobStatus

    if user is None or not getattr(user, "is_authenticated", False):
        return
    mine = Job.objects.filter(owner=user)
    max_active = settings.TERRAIN_MAX_ACTIVE_JOBS_PER_USER
    active = mine.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count()
    if active >= max_active:
        raise LimitExceeded(
            field="jobs", retry_after=ACTIVE_RETRY_SECONDS,
            message=f"you have {active} jobs queued or running; the limit is {max_active}. "
                    f"Wait for one to finish (or cancel one), then try again.",
        )
    per_minute = settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE
    since = timezone.now() - timedelta(seconds=WINDOW_SECONDS)
    recent = list(mine.filter(created_at__gte=since).order_by("-created_at").values_list("created_at", flat=True)[:per_minute])
    if len(recent) >= per_minute:
        oldest = recent[-1]
        retry_after = max(1, math.ceil(WINDOW_SECONDS - (timezone.now() - oldest).total_seconds()))
        raise LimitExceeded(
            field="jobs", retry_after=retry_after,
            message=f"at most {per_minute} jobs per minute; try again in {retry_after} s.",
        )
