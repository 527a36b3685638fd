"""Sweeps over many workers: one part per (cell, seed) through the job protocol's fan-out
(webapp.jobs.fanout: claimed parts, heartbeats, takeover of a dead worker's run).

A part trains one run and stores it; whoever finishes the last run of a cell
evaluates the cell (a unique row, so each cell is written exactly once); the
fan-out's finaliser writes whatever cells remain and the sweep's summary.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.files import local_path
from webapp.jobs import fanout
from webapp.jobs.context import JobCancelled, JobContext
from webapp.jobs.events import job_event_append
from webapp.jobs.models import Job, JobPart
from webapp.phases.models import RunStatus, SweepCell, SweepRun
from webapp.phases.selectors import sweep_header, sweep_spec, sweep_summary

logger = logging.getLogger(__name__)
TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def sweep_start(ctx: JobContext):
    """The sweep job's own run: create its run rows, announce the grid, fan out one part per run."""
    from analysis.phases import run_configs

    job = ctx.job
    spec = sweep_spec(job)
    configs = run_configs(spec)
    SweepRun.objects.bulk_create(
        [SweepRun(job=job, i=c.i, j=c.j, seed=c.seed, config=c.to_dict()) for c in configs], ignore_conflicts=True
    )
    if not ctx.previous_payloads("sweep"):
        ctx.emit("sweep", sweep_header(spec), progress=0.0)
    runs = SweepRun.objects.filter(job=job).order_by("i", "j", "seed")
    return fanout.fanout_start(ctx, [fanout.Part(index=k, payload={"run": run.pk}) for k, run in enumerate(runs)])


def sweep_resume(*, job: Job) -> int:
    """Queue again every run whose worker went silent (or whose task was lost)."""
    return fanout.dispatch_ready(job=job)


# --------------------------------------------------------------------------- one run (a part)


def sweep_part_run(ctx: fanout.PartContext) -> dict:
    """Train one (cell, seed) and store it; a failed run is a result too (its cell uses the other seeds)."""
    from analysis.phases import RunConfig, train_run

    run = SweepRun.objects.select_related("job").get(pk=ctx.payload["run"])
    SweepRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, attempts=ctx.token, started_at=timezone.now())
    try:
        result = train_run(RunConfig.from_dict(run.config), on_progress=lambda event: ctx.heartbeat(), device=ctx.device)
    except (JobCancelled, fanout.PartLost) as exc:
        if isinstance(exc, JobCancelled):
            SweepRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
        raise
    except Exception as exc:
        logger.exception("sweep run %s failed", run)
        error = f"{type(exc).__name__}: {exc}"
        with ctx.write_once():
            SweepRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error=error, finished_at=timezone.now())
        _emit_run(ctx, run, {"status": RunStatus.FAILED, "error": error})
        sweep_maybe_finish_cell(job=run.job, i=run.i, j=run.j)
        return {"status": RunStatus.FAILED}
    _store(ctx, run, result)
    summary = result.to_dict(curves=False)
    _emit_run(ctx, run, {"status": RunStatus.SUCCEEDED, "final": summary["final"], "steps_to_train_90": summary["steps_to_train_90"],
                         "steps_to_test_90": summary["steps_to_test_90"], "seconds": summary["seconds"]})
    sweep_maybe_finish_cell(job=run.job, i=run.i, j=run.j)
    return {"status": RunStatus.SUCCEEDED}


def _store(ctx: fanout.PartContext, run: SweepRun, result) -> None:
    """The run's model file and metrics, written by the worker that holds the run (once)."""
    from analysis import checkpoints

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.safetensors"
        checkpoints.save(path, result.state, result.spec, meta={"sweep": run.job.slug, "run": result.config.to_dict()})
        with open(path, "rb") as handle, ctx.write_once():
            run.state_file.save(f"run-{run.i}-{run.j}-{run.seed}.safetensors", File(handle), save=False)
            SweepRun.objects.filter(pk=run.pk).update(
                status=RunStatus.SUCCEEDED, result=result.to_dict(), state_file=run.state_file.name, finished_at=timezone.now(), error=""
            )


def _emit_run(ctx: fanout.PartContext, run: SweepRun, payload: dict) -> None:
    total = SweepRun.objects.filter(job=run.job).count()
    done = SweepRun.objects.filter(job=run.job, status__in=TERMINAL).count()
    ctx.emit("run", {"i": run.i, "j": run.j, "seed": run.seed, **payload, "done": done, "total": total}, progress=1.0)


# --------------------------------------------------------------------------- cells and completion


def sweep_maybe_finish_cell(*, job: Job, i: int, j: int) -> SweepCell | None:
    """Evaluate cell (i, j) once all its runs are final; exactly one caller writes it."""
    from analysis import checkpoints
    from analysis.phases import RunResult, evaluate_cell

    runs = list(SweepRun.objects.filter(job=job, i=i, j=j))
    if not runs or any(r.status not in TERMINAL for r in runs) or SweepCell.objects.filter(job=job, i=i, j=j).exists():
        return None
    results = [
        RunResult.from_dict(r.result, state=checkpoints.load(local_path(r.state_file)).model.state_dict() if r.state_file else None)
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


def sweep_finish(ctx: fanout.PartContext, parts: list[JobPart]) -> dict:
    """The fan-out's finaliser: runs never trained (a cancel) are cancelled, every cell written, the summary returned."""
    job = ctx.job
    SweepRun.objects.filter(job=job).exclude(status__in=TERMINAL).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    for i, j in sorted(set(SweepRun.objects.filter(job=job).values_list("i", "j"))):
        sweep_maybe_finish_cell(job=job, i=i, j=j)
    return sweep_summary(job=job)


SWEEP_FANOUT = fanout.FanOut(run_part=sweep_part_run, finish=sweep_finish)


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
        experiment=experiment, name=f"{job.slug}-cell{run.i}-{run.j}-seed{run.seed}", path=local_path(run.state_file),
        spec=result.get("spec") or {}, dataset="phases-run", dataset_options={"config": run.config},
        metrics=result.get("final") or {}, created_by_job=job,
        num_parameters=zoo.count_parameters(result.get("spec") or {}),
    )
    SweepRun.objects.filter(pk=run.pk).update(checkpoint=checkpoint)
    return checkpoint


def sweep_run_inline(*, job: Job, device: str = "cpu", log=lambda line: None) -> str:
    """Run a whole sweep in this process (management commands, presets): same rows, same events."""

    def report(part: JobPart, status: str) -> None:
        run = SweepRun.objects.filter(pk=part.payload.get("run")).first()
        if run is not None:
            log(f"  cell ({run.i}, {run.j}) seed {run.seed}: {status}")

    return fanout.run_inline(job=job, device=device, on_part=report)
