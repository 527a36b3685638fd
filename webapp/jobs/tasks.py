"""Celery tasks: thin adapters from a message to the job runner."""

from celery import shared_task
from celery.signals import worker_init, worker_process_init

from webapp.jobs import dispatch, fanout
from webapp.jobs.devices import worker_device
from webapp.jobs import workers  # noqa: F401  (connects the heartbeat and running-task signals)
from webapp.jobs.runner import run_job


@shared_task(name=dispatch.RUN_JOB, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job_task(job_id: int) -> str:
    return run_job(job_id, device=worker_device())


@shared_task(name=dispatch.RUN_PART, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_part_task(part_id: int) -> str:
    return fanout.part_run(part_id=part_id, device=worker_device())


@shared_task(name=dispatch.FANOUT_WATCH, acks_late=True, ignore_result=True)
def fanout_watch_task(job_id: int) -> None:
    fanout.fanout_watch(job_id=job_id)


@worker_init.connect
def keep_parent_single_threaded(**kwargs):
    # GNU OpenMP's thread pool does not survive fork: if this parent process ever ran a torch op
    # on several threads, every prefork child would hang on its first multi-threaded op
    # (analysis/point_parallel.py).  The parent does no numeric work, so one thread costs nothing.
    import torch

    torch.set_num_threads(1)


@worker_process_init.connect
def prepare_worker_process(**kwargs):
    # N prefork children each using every core would thrash a small machine: the budget
    # per child lives in settings (TERRAIN_TORCH_THREADS, TERRAIN_WORKER_THREADS).
    import torch
    from django.conf import settings

    torch.set_num_threads(settings.TERRAIN_TORCH_THREADS)
    warm_up()


def warm_up() -> None:
    """Pay imports and first-call costs at worker start, not inside the first job's clock
    (a landscape's coarse surface should appear within its first 10%)."""
    import analysis.checkpoints  # noqa: F401
    import analysis.connectivity  # noqa: F401
    import analysis.curvature  # noqa: F401
    from analysis import data, landscape, zoo

    X, y = data.load("digits", "all")  # also imports scikit-learn, the slow part
    tiny = zoo.build({"kind": "mlp", "in": 64, "hidden": [4], "out": 10})
    landscape.plane(tiny, (X[:8], y[:8]), resolution=3, threads=point_threads())


def point_threads() -> int:
    """Threads a landscape's points are split between in this worker process."""
    from django.conf import settings

    return settings.TERRAIN_WORKER_THREADS
