"""Sending work to the workers, by task name.

The tasks (webapp.jobs.tasks) call the runner and the fan-out, which send work in turn:
sending by name keeps both of them from importing the tasks back (an import circle).
"""

from __future__ import annotations

RUN_JOB = "terrain.run_job"
RUN_PART = "terrain.run_part"
FANOUT_WATCH = "terrain.fanout_watch"


def send(task: str, *, args: list, queue: str, countdown: float | None = None) -> None:
    from webapp.celery import app

    app.send_task(task, args=args, queue=queue, countdown=countdown)
