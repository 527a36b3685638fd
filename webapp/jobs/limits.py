"""Per-user limits on job submission (minimal version; issue #9 owns the full one).

`check_job_submission(user=...)` is called by the job-submitting service, so the web
forms, the session API and API tokens are all held to the same limits.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.jobs.models import Job, JobStatus

WINDOW = timedelta(minutes=1)
ACTIVE_RETRY_SECONDS = 30


class LimitExceeded(Exception):
    def __init__(self, *, field: str, message: str, retry_after: int):
        self.field = field
        self.message = message
        self.retry_after = retry_after
        super().__init__(message)


def check_job_submission(*, user) -> None:
    if user is None or not user.is_authenticated:
        return
    active_limit = settings.TERRAIN_MAX_ACTIVE_JOBS_PER_USER
    active = Job.objects.filter(owner=user, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count()
    if active_limit and active >= active_limit:
        raise LimitExceeded(
            field="kind", retry_after=ACTIVE_RETRY_SECONDS,
            message=f"you have {active} queued or running jobs (the limit is {active_limit}); wait for one to finish or cancel one",
        )
    rate_limit = settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE
    since = timezone.now() - WINDOW
    recent = list(Job.objects.filter(owner=user, created_at__gte=since).order_by("created_at").values_list("created_at", flat=True)[:rate_limit])
    if rate_limit and len(recent) >= rate_limit:
        retry_after = max(1, math.ceil((recent[0] + WINDOW - timezone.now()).total_seconds()))
        raise LimitExceeded(
            field="kind", retry_after=retry_after,
            message=f"at most {rate_limit} job submissions a minute; try again in {retry_after} s",
        )
