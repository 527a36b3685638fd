"""Appending a job's events: persist first, then publish."""

from django.db import transaction
from django.db.models import F

from webapp.jobs.event_types import event_payload_check
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.publisher import publish


def event_message(job: Job, event: JobEvent) -> dict:
    """The channel-layer message for one event; its `type` routes to JobConsumer.job_event."""
    return {
        "type": "job.event",
        "seq": event.seq,
        "kind": event.kind,
        "payload": event.payload,
        "status": job.status,
        "progress": job.progress,
    }


def job_event_append(*, job: Job, kind: str, payload: dict, progress: float | None = None, **job_fields) -> JobEvent:
    """Store the next event of `job` (seq allocated by the database) and publish it.

    Extra keyword arguments update the job row in the same transaction, so a
    snapshot never shows an event without the state change it announces.
    Raises EventRefused (nothing stored) when the job's kind does not declare
    this event or the payload does not fit its model.
    """
    event_payload_check(job_kind=job.kind, kind=kind, payload=payload)
    updates = {"last_seq": F("last_seq") + 1, **job_fields}
    if progress is not None:
        updates["progress"] = max(0.0, min(1.0, float(progress)))
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(**updates)
        job.refresh_from_db(fields=["last_seq", "status", "progress", *job_fields.keys()])
        event = JobEvent.objects.create(job=job, seq=job.last_seq, kind=kind, payload=payload)
    message = event_message(job, event)
    # Inside an outer transaction (job_finish) a client told now could read the
    # job before the commit and see the old status; publish once it is visible.
    transaction.on_commit(lambda: publish(job.channel_group, message))
    return event
