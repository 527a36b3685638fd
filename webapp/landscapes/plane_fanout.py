"""One landscape plane over many workers, through the job protocol's fan-out (webapp.jobs.fanout).

Part 0 (stage 0) computes the coarse lattice, so the coarse surface still arrives
first; it also computes the two directions and stores them in a file that every
other part reads (hessian and pca axes are costly to find, and a file is the same
tensors bit for bit).  Parts 1..n (stage 1) are blocks of whole refinement rows
(analysis.plane_blocks): each streams its points as the job's events.  The
finaliser puts the blocks together into the same result a single worker returns,
with the same numbers.  A block taken over from a dead worker is computed again
(for the same numbers) but only points not streamed yet are sent.

How many row blocks: webapp.landscapes.fanout_blocks (the coarse lattice is one more part).
"""

from __future__ import annotations


import numpy as np
from django.conf import settings
from django.utils import timezone

from webapp.jobs.fanout import Part, PartContext, fanout_start, job_progress
from webapp.jobs.models import JobPart
from webapp.landscapes.fanout_blocks import requested_blocks
from webapp.landscapes.services import _data, _load_checkpoint, plane_trajectory


def plane_parts(params: dict, queue: str) -> int:
    """How many row blocks a plane job is split into (1: one worker computes it the classic way)."""
    if params.get("mode") != "plane" or params.get("axes") == "three_models":  # one surface per task: not split
        return 1
    return requested_blocks(params, queue)


def plane_fan_out(ctx, blocks: int):
    """Declare the lattice and `blocks` row blocks of the running plane job (the job's run returns this)."""
    from analysis import plane_blocks

    n = ctx.params["resolution"]
    lattice = plane_blocks.coarse_mask(n, n)
    parts = [Part(index=0, payload={"coarse": True}, stage=0, weight=float(lattice.sum()))]
    for k, rows in enumerate(plane_blocks.split_rows(n, n, blocks), start=1):
        size = sum(len(plane_blocks.row_points(row, n, n)) for _, row in rows)
        parts.append(Part(index=k, payload={"rows": [list(r) for r in rows]}, stage=1, weight=float(size)))
    return fanout_start(ctx, parts)


def _directions_name(job) -> str:
    return f"fanout/{job.slug}/directions.safetensors"


def _save_directions(name: str, d1: dict, d2: dict) -> None:
    """Through the storage API, so that workers on other machines read the same axes."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from safetensors.torch import save

    tensors = {f"d1.{n}": t.contiguous() for n, t in d1.items()} | {f"d2.{n}": t.contiguous() for n, t in d2.items()}
    if default_storage.exists(name):  # a redone coarse part computes the same axes (same seed)
        default_storage.delete(name)
    default_storage.save(name, ContentFile(save(tensors)))


def _delete_directions(name: str) -> None:
    from django.core.files.storage import default_storage

    default_storage.delete(name)


def _load_directions(name: str) -> tuple[dict, dict]:
    from django.core.files.storage import default_storage
    from safetensors.torch import load

    with default_storage.open(name, "rb") as handle:
        tensors = load(handle.read())
    return ({n[3:]: t for n, t in tensors.items() if n.startswith(prefix)} for prefix in ("d1.", "d2."))


def run_plane_part(ctx: PartContext) -> dict:
    """Compute one part: the coarse lattice (part 0) or a block of rows; stream its points."""
    from analysis import landscape, plane_blocks

    p = ctx.params
    n = p["resolution"]
    record, loaded = _load_checkpoint(p["checkpoint"])
    X, y = _data(ctx)
    coarse = bool(ctx.payload.get("coarse"))
    if coarse:
        todo = plane_blocks.coarse_mask(n, n)
    else:
        todo = ~plane_blocks.skip_mask(n, n, ctx.payload["rows"])
    already = {(q["i"], q["j"]) for payload in ctx.emitted("points") for q in payload["points"]}
    size, seen = int(todo.sum()), [0]
    started = bool(ctx.emitted("start"))

    def on_progress(event: dict) -> None:
        if event.get("type") == "start":
            if coarse and not started:
                ctx.emit("start", {**{k: v for k, v in event.items() if k != "type"}, "done": 0})
            return
        seen[0] += len(event["points"])
        fresh = [q for q in event["points"] if (q["i"], q["j"]) not in already]
        if not fresh:  # sent by an earlier attempt of this part
            ctx.heartbeat(progress=seen[0] / size)
            return
        done = int(round(job_progress(ctx.job) * n * n)) + len(fresh)
        ctx.emit("points", {"points": fresh, "done": min(done, n * n), "total": n * n, "level": event["level"],
                            "levels": event["levels"]}, progress=seen[0] / size)

    common = dict(resolution=n, batchnorm=p["batchnorm"], on_progress=on_progress, device=ctx.device,
                  resume={"loss": np.full((n, n), np.nan), "computed": ~todo}, threads=settings.TERRAIN_WORKER_THREADS)
    if coarse:
        trajectory = plane_trajectory(p, record)
        surface = landscape.plane(loaded, (X, y), axes=p["axes"], span=p["span"] or None, seed=p["seed"],
                                  include_bias=p["include_bias"], trajectory=trajectory, **common)
        _save_directions(_directions_name(ctx.job), surface.d1, surface.d2)
        return {**surface.to_dict(), "checkpoint": record.slug, "checkpoint_name": record.name, "eval_size": int(len(X))}
    first = JobPart.objects.get(job=ctx.job, index=0).result
    span = ((first["a"][0], first["a"][-1]), (first["b"][0], first["b"][-1]))
    d1, d2 = _load_directions(_directions_name(ctx.job))
    surface = landscape.plane(loaded, (X, y), axes="custom", directions=(d1, d2), span=span, **common)
    block = surface.to_dict()
    return {"points": [[int(i), int(j), block["loss"][i][j], None if block["accuracy"] is None else block["accuracy"][i][j]]
                       for i, j in np.argwhere(todo)]}


def finish_plane(ctx: PartContext, parts: list[JobPart]) -> dict | None:
    """The single-worker result, assembled from the lattice and the row blocks."""
    if ctx.job.cancel_requested:
        return None
    coarse, blocks = parts[0], parts[1:]
    result = dict(coarse.result)
    loss, accuracy = result["loss"], result["accuracy"]
    for block in blocks:
        for i, j, value, acc in block.result["points"]:
            loss[i][j] = value
            if accuracy is not None:
                accuracy[i][j] = acc
    started = ctx.job.started_at or coarse.started_at
    result.update(
        computed=[[True] * len(row) for row in loss], seconds=(timezone.now() - started).total_seconds(),
        coarse_seconds=(coarse.finished_at - started).total_seconds(),
        fanout={"parts": len(parts), "workers": sorted({part.worker for part in parts})},
    )
    if result.get("trajectory") is not None:
        ctx.emit("trajectory", {k: result[k] for k in ("trajectory", "trajectory_steps", "trajectory_loss")})
    result.update(mode="plane", device=ctx.device)
    _delete_directions(_directions_name(ctx.job))
    return result


