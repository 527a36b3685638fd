"""Sweeps fanned out over Celery workers: one task per (cell, seed), the database as the collector.

Why not a chord: a chord's callback waits on every header task, and a header task
lost with its worker (SIGKILL, power cut) stalls it until the broker's visibility
timeout.  Here every run is a row; a worker claims a run by updating it, keeps a
heartbeat while it trains, and whoever finishes a run also evaluates the cell when
its seeds are all done (a unique row, so each cell is written exactly once),
re-queues runs whose worker went silent, and finishes the sweep after the last one.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from webapp.jobs import kinds
from webapp.jobs.context import JobCancelled, JobContext
from webapp.jobs.events import job_event_append
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.services import job_finish
from webapp.phases.models import RunStatus, SweepCell, SweepRun

logger = logging.getLogger(__name__)
TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
HEARTBEAT_SECONDS = 2.0


def stale_after() -> timedelta:
    return timedelta(seconds=settings.TERRAIN_SWEEP_STALE_SECONDS)


def sweep_spec(job: Job):
    from analysis.phases import validate_sweep

    return validate_sweep(job.params["spec"])


# --------------------------------------------------------------------------- start


def sweep_start(ctx: JobContext):
    """The sweep job's own run: create its run rows, announce the grid, fan out."""
    from analysis.phases import run_configs

    job = ctx.job
    spec = sweep_spec(job)
    configs = run_configs(spec)
    SweepRun.objects.bulk_create(
        [SweepRun(job=job, i=c.i, j=c.j, seed=c.seed, config=c.to_dict()) for c in configs], ignore_conflicts=True
    )
    if not ctx.previous_payloads("sweep"):
        ctx.emit("sweep", sweep_header(spec), progress=0.0)
    sweep_dispatch(job=job, runs=SweepRun.objects.filter(job=job, status=RunStatus.QUEUED))
    return kinds.DEFERRED


def sweep_header(spec) -> dict:
    return {
        "title": spec.name,
        "task": spec.task,
        "task_options": spec.task_options,
        "x": spec.x.to_dict(),
        "y": spec.y.to_dict(),
        "x_title": spec.x.title,
        "y_title": spec.y.title,
        "seeds": list(spec.seeds),
        "budget": spec.budget,
        "budget_unit": spec.budget_unit,
        "total_runs": spec.num_runs,
        "metrics": list(spec.metrics),
        "legend": {"grokking": spec.grokking.describe(), "taxonomy": spec.taxonomy.describe()},
    }


def sweep_dispatch(*, job: Job, runs) -> int:
    """Queue one task per run (a Celery group), on the job's queue."""
    from celery import group

    from webapp.phases.tasks import run_sweep_member

    ids = list(runs.values_list("pk", flat=True))
    if ids:
        group(run_sweep_member.si(run_id).set(queue=job.queue) for run_id in ids).apply_async()
    return len(ids)


def sweep_resume(*, job: Job) -> int:
    """Queue again every run that is not done and not being trained by a live worker."""
    if job.is_finished:
        return 0
    return sweep_dispatch(job=job, runs=_runs_to_redo(job))


def _runs_to_redo(job: Job):
    stale = timezone.now() - stale_after()
    return SweepRun.objects.filter(job=job).filter(
        Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
    )


# --------------------------------------------------------------------------- one run


def _worker_name() -> str:
    return f"{socket.gethostname()}:{__import__('os').getpid()}"


def sweep_member_run(*, run_id: int, device: str = "cpu") -> str:
    """Train one (cell, seed) if nobody else is; idempotent for redelivered tasks."""
    run = SweepRun.objects.select_related("job").filter(pk=run_id).first()
    if run is None:
        return "missing"
    job = run.job
    if run.status in TERMINAL:
        return run.status
    if job.is_finished or job.cancel_requested:
        SweepRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
        sweep_maybe_finish(job=job)
        return RunStatus.CANCELLED
    now = timezone.now()
    claimed = SweepRun.objects.filter(pk=run.pk).filter(
        Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, heartbeat_at__lt=now - stale_after())
    ).update(status=RunStatus.RUNNING, worker=_worker_name(), heartbeat_at=now, started_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "claimed-elsewhere"
    try:
        status = _train_and_store(run=run, device=device)
    finally:
        _after_run(job=job, run=run)
    return status


def _train_and_store(*, run: SweepRun, device: str) -> str:
    from analysis import checkpoints
    from analysis.phases import RunConfig, train_run

    job = run.job
    last_beat = [time.monotonic()]

    def on_progress(event: dict) -> None:
        if time.monotonic() - last_beat[0] >= HEARTBEAT_SECONDS:
            last_beat[0] = time.monotonic()
            SweepRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
            if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
                raise JobCancelled()

    try:
        result = train_run(RunConfig.from_dict(run.config), on_progress=on_progress, device=device)
    except JobCancelled:
        SweepRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
        return RunStatus.CANCELLED
    except Exception as exc:
        logger.exception("sweep run %s failed", run)
        SweepRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now())
        _emit_run(job=job, run=run, payload={"status": RunStatus.FAILED, "error": f"{type(exc).__name__}: {exc}"})
        return RunStatus.FAILED

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.safetensors"
        checkpoints.save(path, result.state, result.spec, meta={"sweep": job.slug, "run": result.config.to_dict()})
        with open(path, "rb") as handle, transaction.atomic():
            run.state_file.save(f"run-{run.i}-{run.j}-{run.seed}.safetensors", File(handle), save=False)
            SweepRun.objects.filter(pk=run.pk).update(
                status=RunStatus.SUCCEEDED, result=result.to_dict(), state_file=run.state_file.name, finished_at=timezone.now(), error=""
            )
    summary = result.to_dict(curves=False)
    _emit_run(job=job, run=run, payload={"status": RunStatus.SUCCEEDED, "final": summary["final"],
                                         "steps_to_train_90": summary["steps_to_train_90"], "steps_to_test_90": summary["steps_to_test_90"],
                                         "seconds": summary["seconds"]})
    return RunStatus.SUCCEEDED


def _emit_run(*, job: Job, run: SweepRun, payload: dict) -> None:
    total = SweepRun.objects.filter(job=job).count()
    done = SweepRun.objects.filter(job=job, status__in=TERMINAL).count()
    job_event_append(job=job, kind="run", payload={"i": run.i, "j": run.j, "seed": run.seed, **payload, "done": done, "total": total},
                     progress=done / max(1, total))


def _after_run(*, job: Job, run: SweepRun) -> None:
    sweep_maybe_finish_cell(job=job, i=run.i, j=run.j)
    redo = _runs_to_redo(job).filter(status=RunStatus.RUNNING)
    if redo.exists():
        logger.warning("re-queueing %d runs of sweep %s whose worker went silent", redo.count(), job.slug)
        sweep_dispatch(job=job, runs=redo)
    if sweep_maybe_finish(job=job) is False and not SweepRun.objects.filter(job=job, status=RunStatus.QUEUED).exists():
        # Only runs on other workers remain: look again once they could have gone stale.
        from webapp.phases.tasks import watch_sweep

        watch_sweep.apply_async(args=[job.pk], countdown=settings.TERRAIN_SWEEP_STALE_SECONDS + 1, queue=job.queue)


# --------------------------------------------------------------------------- cells and completion


def sweep_maybe_finish_cell(*, job: Job, i: int, j: int) -> SweepCell | None:
    """Evaluate cell (i, j) once all its runs are final; exactly one caller writes it."""
    from analysis import checkpoints
    from analysis.phases import RunResult, evaluate_cell

    runs = list(SweepRun.objects.filter(job=job, i=i, j=j))
    if not runs or any(r.status not in TERMINAL for r in runs) or SweepCell.objects.filter(job=job, i=i, j=j).exists():
        return None
    results = [
        RunResult.from_dict(r.result, state=checkpoints.load(r.state_file.path).model.state_dict() if r.state_file else None)
        for r in runs if r.status == RunStatus.SUCCEEDED
    ]
    if results:
        cell = evaluate_cell(sweep_spec(job), results).to_dict()
    else:
        cell = {"i": i, "j": j, "phase": {}, "note": "every run of this cell failed or was cancelled"}
    phase = cell.get("phase") or {}
    try:
        with transaction.atomic():
            record = SweepCell.objects.create(job=job, i=i, j=j, result=cell, grokking_label=phase.get("grokking") or "",
                                              taxonomy_label=phase.get("taxonomy") or "")
    except IntegrityError:
        return None  # another worker wrote it first
    job_event_append(job=job, kind="cell", payload=cell)
    return record


def sweep_maybe_finish(*, job: Job) -> bool | None:
    """Finish the sweep when no run is pending; None if it was already final."""
    job.refresh_from_db()
    if job.is_finished:
        return None
    if SweepRun.objects.filter(job=job).exclude(status__in=TERMINAL).exists():
        return False
    for i, j in set(SweepRun.objects.filter(job=job).values_list("i", "j")):
        sweep_maybe_finish_cell(job=job, i=i, j=j)
    from webapp.phases.selectors import sweep_summary

    status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.SUCCEEDED
    return job_finish(job=job, status=status, result=sweep_summary(job=job))


def sweep_watch(*, job_id: int) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    sweep_resume(job=job)
    if sweep_maybe_finish(job=job) is False and not _runs_to_redo(job).exists():
        from webapp.phases.tasks import watch_sweep

        watch_sweep.apply_async(args=[job.pk], countdown=settings.TERRAIN_SWEEP_STALE_SECONDS + 1, queue=job.queue)


def sweep_run_checkpoint(*, run: SweepRun, user):
    """The catalog checkpoint of a run's model, made on first request (for landscapes)."""
    from webapp.catalog.services import checkpoint_create_from_file, experiment_create

    if run.checkpoint_id:
        return run.checkpoint
    job = run.job
    experiment = job.experiment
    if experiment is None:
        # Its visibility is the sweep's, read at request time (catalog.selectors), never a copy.
        experiment = experiment_create(title=f"Models of sweep {job.title or job.slug}"[:200], owner=job.owner,
                                       visibility=job.visibility, source_job=job)
        Job.objects.filter(pk=job.pk).update(experiment=experiment)
    from analysis import zoo

    result = run.result or {}
    checkpoint = checkpoint_create_from_file(
        experiment=experiment, name=f"{job.slug}-cell{run.i}-{run.j}-seed{run.seed}", path=Path(run.state_file.path),
        spec=result.get("spec") or {}, dataset="phases-run", dataset_options={"config": run.config},
        metrics=result.get("final") or {}, created_by_job=job,
        num_parameters=zoo.count_parameters(result.get("spec") or {}),
    )
    SweepRun.objects.filter(pk=run.pk).update(checkpoint=checkpoint)
    return checkpoint


def sweep_run_inline(*, job: Job, device: str = "cpu", log=lambda line: None) -> str:
    """Run a whole sweep in this process (management commands, presets): same rows, same events."""
    from webapp.jobs.runner import run_job

    global sweep_dispatch
    fan_out = sweep_dispatch
    sweep_dispatch = lambda *, job, runs: 0  # noqa: E731  (members run below instead of being queued)
    try:
        run_job(job.pk, device=device)
        pending = SweepRun.objects.filter(job=job).exclude(status__in=TERMINAL).order_by("i", "j", "seed")
        for run in pending:
            log(f"  cell ({run.i}, {run.j}) seed {run.seed}: {sweep_member_run(run_id=run.pk, device=device)}")
        sweep_maybe_finish(job=job)
    finally:
        sweep_dispatch = fan_out
    job.refresh_from_db()
    return job.status
