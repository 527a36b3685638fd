"""The landscape kind over many workers: a plane (plane_fanout) or a dense line (line_fanout), else one worker."""

from __future__ import annotations

from webapp.jobs.fanout import FanOut, PartContext
from webapp.jobs.models import JobPart
from webapp.landscapes.line_fanout import finish_line, line_fan_out, line_split, run_line_part
from webapp.landscapes.plane_fanout import finish_plane, plane_fan_out, plane_parts, run_plane_part
from webapp.landscapes.services import landscape_run


def landscape_run_or_fan_out(ctx) -> dict:
    """The landscape kind's run: split into parts when asked to (and worth it), else one worker does it all."""
    if ctx.params.get("mode") == "line":
        split = line_split(ctx.params, ctx.job.queue)
        return line_fan_out(ctx, split) if split else landscape_run(ctx)
    blocks = plane_parts(ctx.params, ctx.job.queue)
    return plane_fan_out(ctx, blocks) if blocks > 1 else landscape_run(ctx)


def _run_part(ctx: PartContext) -> dict:
    return (run_line_part if ctx.params.get("mode") == "line" else run_plane_part)(ctx)


def _finish(ctx: PartContext, parts: list[JobPart]) -> dict | None:
    return (finish_line if ctx.params.get("mode") == "line" else finish_plane)(ctx, parts)


LANDSCAPE_FANOUT = FanOut(run_part=_run_part, finish=_finish)
