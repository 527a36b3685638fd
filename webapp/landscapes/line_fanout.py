"""One dense line over many workers, through the job protocol's fan-out (webapp.jobs.fanout).

Part 0 (stage 0) computes the coarse curve (analysis.line_blocks), so it still
arrives first; parts 1..n (stage 1) are blocks of whole 128-point segments, each
streaming its points as the job's events.  Every part builds the direction itself
(a seeded random direction, or the end checkpoint minus the start): the same
tensors in every process.  The finaliser puts the parts together into the result a
single worker returns, with the same numbers.  A block taken over from a dead
worker is computed again (for the same numbers) but only points not streamed yet
are sent.  How many blocks: webapp.landscapes.fanout_blocks.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from webapp.jobs.fanout import Part, PartContext, fanout_start, job_progress
from webapp.jobs.models import JobPart
from webapp.landscapes.fanout_blocks import requested_blocks
from webapp.landscapes.services import _data, _load_checkpoint


def line_split(params: dict, queue: str) -> list[list[int]]:
    """Blocks of segment numbers a line job is cut into ([]: one worker computes it the classic way).

    Each block gets at least one full 128-point segment, so a line fans out from about
    280 points on (two segments after the coarse curve): a part costs a model and data
    load and a task round trip, more than a shorter line's points cost on one worker.
    """
    from analysis import line_blocks

    if params.get("mode") != "line" or params.get("axes", "random") != "random":
        return []  # a Hessian or PCA axis would be found again by every part: one worker
    steps = params["resolution"]
    blocks = min(requested_blocks(params, queue), (steps - len(line_blocks.coarse_indices(steps))) // line_blocks.SEGMENT)
    return line_blocks.split_segments(steps, blocks) if blocks > 1 else []


def line_fan_out(ctx, split: list[list[int]]):
    """Declare the coarse curve and the segment blocks of the running line job (the job's run returns this)."""
    from analysis import line_blocks

    steps = ctx.params["resolution"]
    parts = [Part(index=0, payload={"segments": [0]}, stage=0, weight=float(len(line_blocks.coarse_indices(steps))))]
    for k, numbers in enumerate(split, start=1):
        size = int((~line_blocks.skip_mask(steps, numbers)).sum())
        parts.append(Part(index=k, payload={"segments": numbers}, stage=1, weight=float(size)))
    return fanout_start(ctx, parts)


def run_line_part(ctx: PartContext) -> dict:
    """Compute one part: the coarse curve (part 0) or a block of segments; stream its points."""
    from analysis import landscape, line_blocks

    p = ctx.params
    steps = p["resolution"]
    record, loaded = _load_checkpoint(p["checkpoint"])
    X, y = _data(ctx)
    skip = line_blocks.skip_mask(steps, ctx.payload["segments"])
    already = {q["k"] for payload in ctx.emitted("points") for q in payload["points"]}
    size, seen = int((~skip).sum()), [0]

    def on_progress(event: dict) -> None:
        seen[0] += len(event["points"])
        fresh = [q for q in event["points"] if q["k"] not in already]
        if not fresh:  # sent by an earlier attempt of this part
            ctx.heartbeat(progress=seen[0] / size)
            return
        done = int(round(job_progress(ctx.job) * steps)) + len(fresh)
        ctx.emit("points", {"points": fresh, "done": min(done, steps), "total": steps, "level": event["level"],
                            "levels": event["levels"]}, progress=seen[0] / size)

    end = _load_checkpoint(p["end_checkpoint"])[1].module if p.get("end_checkpoint") else None
    line = landscape.line(loaded, (X, y), end=end, steps=steps, span=p["span"] or None, seed=p["seed"],
                          include_bias=p["include_bias"], resume={"computed": skip}, on_progress=on_progress,
                          device=ctx.device, threads=settings.TERRAIN_WORKER_THREADS).to_dict()
    result = {"points": [[k, line["loss"][k], None if line["accuracy"] is None else line["accuracy"][k]] for k in range(steps)
                         if not skip[k]]}
    if ctx.index == 0:  # what every part computes alike, kept once
        result["line"] = {key: line[key] for key in ("t", "kind", "directions")} | {
            "checkpoint": record.slug, "checkpoint_name": record.name, "eval_size": int(len(X)), "classification": line["accuracy"] is not None}
    return result


def finish_line(ctx: PartContext, parts: list[JobPart]) -> dict | None:
    """The single-worker result, assembled from the coarse curve and the segment blocks."""
    if ctx.job.cancel_requested:
        return None
    coarse = parts[0]
    result = dict(coarse.result["line"])
    steps = len(result["t"])
    loss, accuracy = [None] * steps, [None] * steps if result.pop("classification") else None
    for part in parts:
        for k, value, acc in part.result["points"]:
            loss[k] = value
            if accuracy is not None:
                accuracy[k] = acc
    started = ctx.job.started_at or coarse.started_at
    result.update(loss=loss, accuracy=accuracy, mode="line", device=ctx.device, seconds=(timezone.now() - started).total_seconds(),
                  coarse_seconds=(coarse.finished_at - started).total_seconds(),
                  fanout={"parts": len(parts), "workers": sorted({part.worker for part in parts})})
    return result
