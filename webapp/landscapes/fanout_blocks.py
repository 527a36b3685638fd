"""How many blocks a plane, a dense line or a Hessian density is split into for many workers (one rule for all three).

A job's ``parts`` param wins; else TERRAIN_PLANE_PARTS: a number of blocks (1 = never
fan out), or "auto" (the default): 4 blocks per worker process when the job's queue has
more than one alive (workers announce their process count in Redis, webapp.jobs.queues),
and the job is big enough to gain from it (``MIN_AUTO_WORK``).
Each kind then caps the number by what it can cut: whole plane rows, whole line
segments, probe vectors (plane_fanout, line_fanout, hessian_fanout).
"""

from __future__ import annotations

from django.conf import settings

from webapp.jobs.queues import worker_slots

BLOCKS_PER_WORKER = 4  # a few blocks each, so a slow or lost worker holds back little
# Estimated multiply-adds (the params' "work") below which "auto" keeps a job on one worker: about
# ten core-seconds of forward passes.  Each part loads the model and data again, and a 1,001-point
# digits-MLP line (1.5e11) took 1.8 s fanned out over two workers against 1.0 s on one.
MIN_AUTO_WORK = 2e11


def requested_blocks(params: dict, queue: str) -> int:
    """Blocks asked for (1: one worker computes the job the classic way)."""
    if params.get("parts"):
        return max(1, int(params["parts"]))
    if settings.TERRAIN_PLANE_PARTS != "auto":
        return max(1, int(settings.TERRAIN_PLANE_PARTS))
    if params.get("work", MIN_AUTO_WORK) < MIN_AUTO_WORK:
        return 1
    slots = worker_slots(queue)
    return BLOCKS_PER_WORKER * slots if slots > 1 else 1
