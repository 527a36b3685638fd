"""How many blocks a plane, a dense line or a Hessian density is split into for many workers (one rule for all three).

A job's ``parts`` param wins; else TERRAIN_PLANE_PARTS: a number of blocks (1 = never
fan out), or "auto" (the default): 4 blocks per worker process when the job's queue has
more than one alive (workers announce their process count in Redis, webapp.jobs.queues).
Each kind then caps the number by what it can cut: whole plane rows, whole line
segments, probe vectors (plane_fanout, line_fanout, hessian_fanout).
"""

from __future__ import annotations

from django.conf import settings

from webapp.jobs.queues import worker_slots

BLOCKS_PER_WORKER = 4  # a few blocks each, so a slow or lost worker holds back little


def requested_blocks(params: dict, queue: str) -> int:
    """Blocks asked for (1: one worker computes the job the classic way)."""
    if params.get("parts"):
        return max(1, int(params["parts"]))
    if settings.TERRAIN_PLANE_PARTS != "auto":
        return max(1, int(settings.TERRAIN_PLANE_PARTS))
    slots = worker_slots(queue)
    return BLOCKS_PER_WORKER * slots if slots > 1 else 1
