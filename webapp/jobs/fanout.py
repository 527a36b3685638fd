"""Fan-out: one job split into parts that any worker on any machine takes, the database as the collector.

A job kind that fans out returns ``fanout_start(ctx, parts)`` from its ``run``
and declares a :class:`FanOut` (``JobKind.fanout``): how one part runs and how
the job's result is assembled from the parts.  Each part is a `JobPart` row and
a Celery task (``terrain.run_part``).  A worker claims a part with a conditional
update (queued, or running with a heartbeat older than the stale timeout), keeps
the claim alive with heartbeats while it works, and lands the result with a
conditional update on its claim token, so each part is written exactly once and
a late duplicate writer (whose claim was taken over) updates nothing.

Parts run in stages: those of stage s+1 are dispatched once every part of stage
s is done (a landscape's coarse lattice is stage 0, so it arrives first).  The
last stage is one finaliser part that builds the job's result and finishes the
job, exactly once.  A part whose worker died is found stale and dispatched again
by whoever looks next: a heartbeat of another part, a part landing, or the watch
task (a Celery countdown task that re-arms itself until the job is final).
acks_late + reject_on_worker_lost already redeliver a task whose child process
died; the stale takeover covers a whole machine going away.

Why not a Celery chord: its callback waits on every header task, and a header
task lost with its worker stalls it until the broker's visibility timeout.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from webapp.jobs import dispatch, kinds
from webapp.jobs.context import JobCancelled, JobContext
from webapp.jobs.events import job_event_append
from webapp.jobs.models import FINISHED_STATUSES, Job, JobEvent, JobPart, JobStatus
from webapp.jobs.services import job_finish

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """A part a job declares: its index, what it computes, its stage and its share of the work."""

    index: int
    payload: dict
    stage: int = 0
    weight: float = 1.0


@dataclass(frozen=True)
class FanOut:
    """What a job kind's parts do: ``run_part(ctx) -> result dict``; ``finish(ctx, parts) -> job result``.

    ``finish`` gets the finished parts (results in ``part.result``) and runs once,
    also after a cancel (it may return None then); the job ends cancelled or succeeded.
    """

    run_part: Callable[["PartContext"], dict | None]
    finish: Callable[["PartContext", list[JobPart]], dict | None]


class PartLost(Exception):
    """This worker's claim on a part was taken over (it was thought dead): stop without writing."""


def stale_after() -> timedelta:
    return timedelta(seconds=settings.TERRAIN_FANOUT_STALE_SECONDS)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PartContext(JobContext):
    """A JobContext for one claimed part: same emit and cancel, plus heartbeats and the part's payload."""

    def __init__(self, job: Job, part: JobPart, device: str = "cpu"):
        super().__init__(job, device=device)
        self.part = part
        self.payload = part.payload
        self.index = part.index
        self.token = part.attempts
        self._last_beat = self._last_look = time.monotonic()

    def raise_if_cancelled(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_cancel_check < self.CANCEL_CHECK_SECONDS:
            return
        self._last_cancel_check = now
        if Job.objects.filter(pk=self.job.pk).filter(Q(cancel_requested=True) | Q(status__in=FINISHED_STATUSES)).exists():
            raise JobCancelled()

    def heartbeat(self, progress: float | None = None, force: bool = False) -> None:
        """Tell the others this part is alive (and how far along); raise PartLost if it was taken over."""
        if not force and progress is None and time.monotonic() - self._last_beat < heartbeat_seconds():
            return
        fields = {"heartbeat_at": timezone.now()}
        if progress is not None:  # never backwards: an attempt taking over starts again from 0
            fields["progress"] = Greatest(F("progress"), max(0.0, min(1.0, float(progress))))
        if not _holding(self.part, self.token).update(**fields):
            raise PartLost()
        self._last_beat = time.monotonic()
        if self._last_beat - self._last_look >= heartbeat_seconds():
            self._last_look = self._last_beat
            dispatch_ready(job=self.job)  # meanwhile, take over the parts of workers that went silent
        self.raise_if_cancelled()

    def emit(self, kind: str, payload: dict, progress: float | None = None) -> None:
        """Persist and publish one event of the job, tagged with this part; `progress` is the part's own."""
        self.heartbeat(progress=progress if progress is not None else self.part.progress)
        job_event_append(job=self.job, kind=kind, payload={**payload, "part": self.index}, progress=job_progress(self.job))

    @contextmanager
    def write_once(self):
        """A transaction in which this worker provably still holds the part: the place for the part's own writes.

        The part row is locked (PostgreSQL; SQLite serialises writers anyway), so a
        takeover cannot slip in between the check and the writes; raises PartLost.
        """
        with transaction.atomic():
            if not _holding(self.part, self.token).select_for_update().exists():
                raise PartLost()
            yield

    def emitted(self, kind: str) -> list[dict]:
        """Payloads of `kind` this part emitted in earlier attempts (a taken-over part may skip re-sending them)."""
        events = JobEvent.objects.filter(job=self.job, kind=kind, payload__part=self.index).order_by("seq")
        return list(events.values_list("payload", flat=True))


def heartbeat_seconds() -> float:
    return max(0.2, min(2.0, settings.TERRAIN_FANOUT_STALE_SECONDS / 4))


def _holding(part: JobPart, token: int):
    return JobPart.objects.filter(pk=part.pk, status=JobStatus.RUNNING, attempts=token)


def job_progress(job: Job) -> float:
    rows = list(JobPart.objects.filter(job=job).values_list("weight", "progress", "status"))
    total = sum(weight for weight, _, _ in rows)
    done = sum(weight * (1.0 if status == JobStatus.SUCCEEDED else progress) for weight, progress, status in rows)
    return done / total if total else 0.0


# --------------------------------------------------------------------------- start and dispatch


def fanout_start(ctx: JobContext, parts: list[Part]):
    """Declare the parts of the running job and dispatch the first stage; the job's run returns this.

    Idempotent: a redelivered job run finds its parts already declared and keeps them
    (even if it would now declare others, e.g. for a different number of workers).
    """
    job = ctx.job
    if not parts:
        raise ValueError("a fan-out needs at least one part")
    rows = [JobPart(job=job, index=p.index, stage=p.stage, payload=p.payload, weight=p.weight) for p in parts]
    rows.append(JobPart(job=job, index=max(p.index for p in parts) + 1, stage=max(p.stage for p in parts) + 1, weight=0.0,
                        finaliser=True))
    with transaction.atomic():
        if not JobPart.objects.filter(job=job).exists():
            JobPart.objects.bulk_create(rows, ignore_conflicts=True)  # a racing duplicate run declares the same
    dispatch_ready(job=job)
    watch_soon(job=job)
    return kinds.DEFERRED


def dispatch_ready(*, job: Job) -> int:
    """Queue a task for every part of the current stage that needs a worker; return how many.

    A part needs one when it was never dispatched, when its task has waited longer
    than the stale timeout while its queue is empty (so its message is not waiting
    there: a dead worker took it), or when its worker stopped beating.  Duplicate
    tasks are harmless (only one claim succeeds), but re-sending parts that merely
    wait their turn behind a long queue would grow the queue every period.
    """
    job.refresh_from_db(fields=["status", "cancel_requested", "queue"])
    if job.is_finished:
        return 0
    pending = JobPart.objects.filter(job=job).exclude(status__in=FINISHED_STATUSES)
    failed = JobPart.objects.filter(job=job, status=JobStatus.FAILED).order_by("index").first()
    if failed is not None:
        job_finish(job=job, status=JobStatus.FAILED, error=f"part {failed.index} failed: {failed.error}")
        pending.filter(status=JobStatus.QUEUED).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
        return 0
    stage = pending.order_by("stage").values_list("stage", flat=True).first()
    if stage is None:
        return 0
    if job.cancel_requested:  # nothing new starts; the finaliser still closes the job
        pending.filter(status=JobStatus.QUEUED, finaliser=False).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
        stage = pending.order_by("stage").values_list("stage", flat=True).first()
        if stage is None:
            return 0
    now = timezone.now()
    stale = now - stale_after()
    due = Q(status=JobStatus.QUEUED, dispatched_at__isnull=True)
    if pending.filter(status=JobStatus.QUEUED, dispatched_at__lt=stale).exists() and _waiting_messages(job.queue) == 0:
        due |= Q(status=JobStatus.QUEUED, dispatched_at__lt=stale)
    dead = Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale) & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
    sent = 0
    for part in pending.filter(stage=stage).filter(due | dead):
        # One dispatcher per part and period, even when several workers look at once.
        if JobPart.objects.filter(pk=part.pk, dispatched_at=part.dispatched_at).update(dispatched_at=now):
            if part.status == JobStatus.RUNNING:
                logger.warning("part %s of job %s: worker %s went silent; dispatching it again", part.index, job.slug, part.worker)
            _send(part_id=part.pk, queue=job.queue)
            sent += 1
    return sent


def _waiting_messages(queue: str) -> int | None:
    """Messages waiting in the broker's ``queue``; None if the broker cannot be read (then nothing is re-sent)."""
    import redis

    from webapp.jobs import workers

    try:
        return workers.queue_lengths([queue])[queue]
    except redis.RedisError:
        logger.warning("could not read the length of queue %s", queue, exc_info=True)
        return None


# Set while run_inline() runs a job's parts in this process: nothing goes to the broker then.
_inline = contextvars.ContextVar("terrain_fanout_inline", default=False)


def _send(*, part_id: int, queue: str) -> None:
    if _inline.get():
        return
    transaction.on_commit(lambda: dispatch.send(dispatch.RUN_PART, args=[part_id], queue=queue))


# --------------------------------------------------------------------------- one part


def part_run(*, part_id: int, device: str = "cpu") -> str:
    """Claim part `part_id` and run it; idempotent for duplicate and redelivered tasks."""
    part = JobPart.objects.select_related("job").filter(pk=part_id).first()
    if part is None:
        return "missing"
    job = part.job
    if part.status in FINISHED_STATUSES:
        return part.status
    if job.is_finished:
        JobPart.objects.filter(pk=part.pk, status=JobStatus.QUEUED).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
        return JobStatus.CANCELLED
    if JobPart.objects.filter(job=job, stage__lt=part.stage).exclude(status__in=FINISHED_STATUSES).exists():
        return "waiting"  # an earlier stage is still running; the stage's end dispatches this part again
    now = timezone.now()
    claimed = JobPart.objects.filter(pk=part.pk).filter(
        Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after())
    ).update(status=JobStatus.RUNNING, worker=worker_name(), heartbeat_at=now, started_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "claimed-elsewhere"
    part.refresh_from_db()
    ctx = PartContext(job, part, device=device)
    try:
        status = _finalise(ctx) if part.finaliser else _run(ctx)
    except PartLost:
        logger.warning("part %s of job %s was taken over by another worker; dropping this attempt", part.index, job.slug)
        return "lost"
    if not part.finaliser:
        _after_landing(job=job, part=part)
    return status


def _run(ctx: PartContext) -> str:
    part = ctx.part
    try:
        ctx.raise_if_cancelled(force=True)
        result = kinds.get(ctx.job.kind).fanout.run_part(ctx)
    except PartLost:
        raise
    except JobCancelled:
        return _land(ctx, JobStatus.CANCELLED)
    except Exception as exc:
        logger.exception("part %s of job %s (%s) failed", part.index, ctx.job.slug, ctx.job.kind)
        return _land(ctx, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    return _land(ctx, JobStatus.SUCCEEDED, result=result or {})


def _land(ctx: PartContext, status: str, *, result: dict | None = None, error: str = "") -> str:
    """Write the part's outcome once: only while this worker still holds its claim."""
    fields = {"status": status, "finished_at": timezone.now(), "error": error, "result": result}
    if status == JobStatus.SUCCEEDED:
        fields["progress"] = 1.0
    if not _holding(ctx.part, ctx.token).update(**fields):
        raise PartLost()
    return status


def _finalise(ctx: PartContext) -> str:
    job = ctx.job
    parts = list(JobPart.objects.filter(job=job, finaliser=False).order_by("index"))
    try:
        result = kinds.get(job.kind).fanout.finish(ctx, parts)
    except PartLost:
        raise
    except Exception as exc:
        logger.exception("finishing job %s (%s) failed", job.slug, job.kind)
        with transaction.atomic():
            _land(ctx, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            job_finish(job=job, status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    job.refresh_from_db(fields=["cancel_requested"])
    status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.SUCCEEDED
    with transaction.atomic():
        _land(ctx, JobStatus.SUCCEEDED)
        job_finish(job=job, status=status, result=result)
    return status


def _after_landing(*, job: Job, part: JobPart) -> None:
    """Start whatever the landing made ready; if only other workers' parts remain, look again later."""
    dispatch_ready(job=job)
    job.refresh_from_db(fields=["status"])
    if job.is_finished:
        return
    pending = JobPart.objects.filter(job=job).exclude(status__in=FINISHED_STATUSES)
    # the current stage only: a later stage's parts (the finaliser) wait queued for this one
    stage = pending.filter(stage=pending.order_by("stage").values_list("stage", flat=True).first())
    if not stage.filter(status=JobStatus.QUEUED).exists():
        # Every remaining part is held by another worker: if that worker is dead and took the
        # watch task with it, nobody else would notice; this countdown task makes sure someone does.
        watch_soon(job=job, force=True)


# --------------------------------------------------------------------------- the watch


def _watch_key(job: Job) -> str:
    return f"terrain:fanout-watch:{job.slug}"


def watch_soon(*, job: Job, force: bool = False) -> None:
    """Schedule the watch task once per stale period (force: regardless of one already pending)."""
    import redis

    period = settings.TERRAIN_FANOUT_STALE_SECONDS + 1
    if _inline.get():
        return
    if not force:
        try:
            # The key expires, so a watch lost with a dead worker does not block the next one for long.
            if not redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).set(_watch_key(job), "1", nx=True, ex=2 * period):
                return
        except redis.RedisError:
            logger.warning("could not reach Redis to de-duplicate the fan-out watch; scheduling one anyway")
    queue = job.queue
    transaction.on_commit(lambda: dispatch.send(dispatch.FANOUT_WATCH, args=[job.pk], countdown=period, queue=queue))


def fanout_watch(*, job_id: int) -> None:
    """Re-dispatch parts whose worker went silent (or whose task was lost), until the job is final."""
    import redis

    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).delete(_watch_key(job))
    except redis.RedisError:
        pass
    if job.is_finished:
        return
    dispatch_ready(job=job)
    job.refresh_from_db(fields=["status"])
    if not job.is_finished:
        watch_soon(job=job)


def run_inline(*, job: Job, device: str = "cpu", on_part: Callable[[JobPart, str], None] = lambda part, status: None) -> str:
    """Run a job and all its parts in this process, stage by stage (management commands, presets).

    Same rows and events as with workers; parts claimed by a live worker elsewhere are left to it.
    """
    from webapp.jobs.runner import run_job

    token = _inline.set(True)
    try:
        run_job(job.pk, device=device)
        tried: set[int] = set()
        while True:
            pending = JobPart.objects.filter(job=job, status=JobStatus.QUEUED).exclude(pk__in=tried).order_by("stage", "index")
            part = pending.first()
            if part is None:
                break
            tried.add(part.pk)
            on_part(part, part_run(part_id=part.pk, device=device))
    finally:
        _inline.reset(token)
    job.refresh_from_db()
    return job.status
