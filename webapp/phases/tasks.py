"""Celery tasks of a sweep: thin adapters to webapp.phases.services."""

from celery import shared_task

from webapp.jobs.devices import worker_device
from webapp.phases import services


@shared_task(name="terrain.sweep.run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_sweep_member(run_id: int) -> str:
    return services.sweep_member_run(run_id=run_id, device=worker_device())


@shared_task(name="terrain.sweep.watch", acks_late=True, ignore_result=True)
def watch_sweep(job_id: int) -> None:
    services.sweep_watch(job_id=job_id)
