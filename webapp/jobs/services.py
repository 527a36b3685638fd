"""Writes on jobs: create, enqueue, cancel, publish.  The only place with job rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from webapp.catalog.models import Experiment
from webapp.catalog.visibility import Visibility
from webapp.jobs import dispatch, kinds
from webapp.jobs.events import job_event_append
from webapp.jobs.limits import LimitExceeded, check_job_submission  # noqa: F401  (LimitExceeded: for callers)
from webapp.jobs.models import FINISHED_STATUSES, Job, JobStatus
from webapp.jobs.params import JobParamsInvalid, params_validate
from webapp.jobs.queues import queue_for

logger = logging.getLogger(__name__)


class NotAllowed(PermissionError):
    pass


@dataclass(frozen=True)
class ValidatedJob:
    kind: str
    params: dict
    visibility: str
    experiment: Experiment | None
    # Validated uploads (catalog.uploads.PendingUpload) the params name; stored by job_submit.
    uploads: tuple = ()


def job_params_validate(*, kind: str, data, user=None, files=None) -> ValidatedJob:
    """Validate raw parameters through the kind's params model; raise JobParamsInvalid naming each bad field.

    `data` from an HTML form (a QueryDict) goes through the kind's derived form, which reads the
    posted values as the browser sends them (unchecked boxes absent, lists repeated); anything
    else (JSON, code) goes to the model as it is.  Both end in webapp.jobs.params.params_validate.
    """
    try:
        job_kind = kinds.get(kind)
    except kinds.UnknownJobKind as exc:
        raise JobParamsInvalid({"kind": [str(exc)]}) from None
    _refuse_nul(job_kind, data, user)
    if job_kind.params is None:
        return _validate_by_own_form(job_kind, data, user, files)
    if hasattr(data, "getlist") or files:
        form = job_kind.form_class(data=data, files=files, user=user)
        if not form.is_valid():
            raise JobParamsInvalid({field: [str(m) for m in messages] for field, messages in form.errors.items()}, form=form)
        params, checks = form.validated
    else:
        params, checks = params_validate(job_kind.params, data, user=user)
    return ValidatedJob(kind=kind, params=checks.params, visibility=params.visibility, experiment=checks.experiment,
                        uploads=tuple(checks.pending_uploads))


def _validate_by_own_form(job_kind, data, user, files) -> ValidatedJob:
    """A kind that still declares its own Django form (form_class, to_params, job_options)."""
    if not hasattr(data, "getlist"):  # JSON or code, not an HTML form (whose unchecked boxes are simply absent)
        data = _with_defaults(job_kind.form_class, data)
    form = job_kind.form_class(data=data, files=files, user=user)
    if not form.is_valid():
        _discard(getattr(form, "pending_uploads", ()))
        raise JobParamsInvalid({field: [str(message) for message in messages] for field, messages in form.errors.items()}, form=form)
    return ValidatedJob(kind=job_kind.name, params=form.to_params(), uploads=tuple(getattr(form, "pending_uploads", ())), **form.job_options())


def _refuse_nul(job_kind, data, user) -> None:
    """PostgreSQL refuses NUL in text, and a form may query with a raw value before it validates
    it: refuse NUL here, naming each field, before anything reaches the database."""
    items = data.lists() if hasattr(data, "lists") else dict(data or {}).items()
    bad = [str(key).replace("\x00", "") for key, value in items
           if "\x00" in str(key) or any("\x00" in v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))]
    if not bad:
        return
    form = job_kind.form_class(user=user)  # unbound: the page shows the form again, with the errors
    form.full_clean()
    form.cleaned_data = {}
    for name in bad:
        form.add_error(name if name in form.fields else None, f"{name}: contains a NUL character")
    raise JobParamsInvalid({name: ["contains a NUL character"] for name in bad}, form=form)


def _with_defaults(form_class, data) -> dict:
    """API clients may omit any field that has a default: fill it in from the form's initial."""
    given = data.dict() if hasattr(data, "dict") else dict(data or {})
    defaults = {name: field.initial for name, field in form_class.base_fields.items() if field.initial is not None}
    return {**defaults, **given}


def job_submit(*, validated: ValidatedJob, owner) -> Job:
    """A user's own submission (form, API, token, client): held to the per-user limits (jobs.limits),
    then the job and its uploads are stored in one transaction: all of it or nothing."""
    from webapp.catalog.uploads import uploads_store

    try:
        check_job_submission(user=owner)
        with transaction.atomic():
            job = job_create(
                kind=validated.kind,
                params=validated.params,
                owner=owner,
                visibility=validated.visibility,
                experiment=validated.experiment,
            )
            uploads_store(uploads=validated.uploads, owner=owner)
    finally:
        _discard(validated.uploads)
    return job


def _discard(uploads) -> None:
    for upload in uploads:
        upload.close()


def job_create(
    *,
    kind: str,
    params: dict,
    owner: AbstractBaseUser | None,
    visibility: str = Visibility.PRIVATE,
    experiment: Experiment | None = None,
    title: str = "",
    enqueue: bool = True,
) -> Job:
    """Create a queued job from already-validated params and enqueue it after commit.

    Users' submissions come through job_submit, which applies the per-user limits; the
    demo's own publishing calls this directly.
    """
    job_kind = kinds.get(kind)
    if owner is not None and isinstance(owner, AnonymousUser):
        owner = None
    job = Job.objects.create(
        kind=kind,
        params=params,
        owner=owner,
        visibility=visibility,
        experiment=experiment,
        title=title or job_kind.title_for(params),
        queue=queue_for(job_kind),
    )
    if enqueue:
        transaction.on_commit(lambda: job_enqueue(job=job))
    return job


def job_enqueue(*, job: Job) -> None:
    dispatch.send(dispatch.RUN_JOB, args=[job.pk], queue=job.queue)


def job_cancel(*, job: Job, user) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next event."""
    if not job_can_manage(job=job, user=user):
        raise NotAllowed("only the owner can cancel this job")
    if job.is_finished:
        return job
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            cancel_requested=True, status=JobStatus.CANCELLED, finished_at=timezone.now()
        )
        if not updated:
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    if updated:
        job_event_append(job=job, kind="status", payload={"status": JobStatus.CANCELLED})
    return job


def job_finish(*, job: Job, status: str, result: dict | None = None, error: str = "") -> bool:
    """Move a job to a final status once; returns False when it was already final.

    The conditional update makes this safe when several workers (the tasks of a
    sweep) may try to finish the same job.
    """
    if status == JobStatus.SUCCEEDED and result is not None:
        # Only declared result shapes reach the page, the exports and the API.
        error = kinds.get(job.kind).result_errors(result)
        if error:
            logger.error("job %s: %s", job.slug, error)
            status, result = JobStatus.FAILED, None
    fields = {"status": status, "finished_at": timezone.now(), "error": error}
    if result is not None:
        fields["result"] = result
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job.pk).exclude(status__in=FINISHED_STATUSES).update(status=status)
        if not claimed:
            job.refresh_from_db()
            return False
        payload = {"status": status}
        if result is not None:
            payload["result"] = result
        if error:
            payload["error"] = error
        job_event_append(
            job=job, kind="status", payload=payload, progress=1.0 if status == JobStatus.SUCCEEDED else None, **fields
        )
    return True


def job_set_visibility(*, job: Job, user, visibility: str) -> Job:
    if not job_can_manage(job=job, user=user):
        raise NotAllowed("only the owner can change who sees this job")
    if visibility not in Visibility.values:
        raise JobParamsInvalid({"visibility": [f"must be one of {', '.join(Visibility.values)}"]})
    job.visibility = visibility
    job.save(update_fields=["visibility"])
    return job


def job_can_manage(*, job: Job, user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or job.owner_id == user.pk))
