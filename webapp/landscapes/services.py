"""Running landscape, Hessian and connectivity jobs: analysis does the maths, this file
loads inputs, streams progress and shapes results."""

from __future__ import annotations

import numpy as np
from django.conf import settings

from webapp.catalog.models import Checkpoint
from webapp.files import local_path
from webapp.jobs.context import JobContext
from webapp.landscapes.evaluation_data import evaluation_data
from webapp.landscapes.three_model_plane import three_model_plane_run


def _load_checkpoint(slug: str):
    """``(record, LoadedModel)`` for any source; extraction happens in a directory removed right after."""
    import tempfile
    from pathlib import Path

    from webapp.catalog.model_files import load_checkpoint

    record = Checkpoint.objects.get(slug=slug)
    with tempfile.TemporaryDirectory() as tmp:
        return record, load_checkpoint(record, Path(tmp))


def plane_trajectory(p: dict, record: Checkpoint):
    """The trajectory PCA axes (a plane's, or a line's first) come from: a logged run's checkpoints, or the checkpoint's own."""
    from analysis import checkpoints

    if p["axes"] != "pca":
        return None
    if p.get("run"):
        from webapp.runs.trajectory import run_trajectory

        return run_trajectory(run_slug=p["run"], spec=record.spec)
    return checkpoints.load_trajectory(local_path(record.trajectory_file))


def _data(ctx: JobContext):
    p = ctx.params
    return evaluation_data(dataset=p["dataset"], split=p["split"], size=p["eval_size"], owner_id=ctx.job.owner_id)


def _task_data(ctx: JobContext, classes: list[int] | None):
    """A digits subset (one task of a three-model plane), or the job's data set when no classes are given."""
    if classes is None:
        return _data(ctx)
    from webapp.landscapes.evaluation_sets import tasks_for

    (task,) = tasks_for(class_lists=[classes], datasets=[], split=ctx.params["split"], size=ctx.params["eval_size"], owner_id=None)
    return task.X, task.y


def _resume_plane(previous_points: list[dict], resolution: int):
    """Rebuild what earlier attempts computed, so a retried job skips those points."""
    if not previous_points:
        return None
    loss = np.full((resolution, resolution), np.nan)
    accuracy = np.full((resolution, resolution), np.nan)
    computed = np.zeros((resolution, resolution), dtype=bool)
    for payload in previous_points:
        for point in payload["points"]:
            i, j = point["i"], point["j"]
            loss[i, j] = np.nan if point["loss"] is None else point["loss"]
            accuracy[i, j] = np.nan if point.get("accuracy") is None else point["accuracy"]
            computed[i, j] = True
    return {"loss": loss.tolist(), "accuracy": accuracy.tolist(), "computed": computed}


def landscape_run(ctx: JobContext) -> dict:
    from analysis import landscape

    p = ctx.params
    record, loaded = _load_checkpoint(p["checkpoint"])
    if p["mode"] == "plane" and p["axes"] == "three_models":
        result = three_model_plane_run(ctx, record, loaded, _load_checkpoint, lambda classes: _task_data(ctx, classes))
        result.update(mode="plane", checkpoint=record.slug, checkpoint_name=record.name, device=ctx.device)
        return result
    X, y = _data(ctx)
    span = p["span"] or None

    def on_progress(event: dict) -> None:
        if event.get("type") == "start":
            ctx.emit("start", {k: v for k, v in event.items() if k != "type"})
        elif event.get("type") == "points":
            payload = {k: event[k] for k in ("points", "done", "total", "level", "levels") if k in event}
            ctx.emit("points", payload, progress=event["done"] / max(1, event["total"]))

    if p["mode"] == "line":
        end = _load_checkpoint(p["end_checkpoint"])[1].module if p.get("end_checkpoint") else None
        result = landscape.line(
            loaded, (X, y), end=end, axes=p.get("axes", "random"), trajectory=plane_trajectory(p, record),
            steps=p["resolution"], span=span, seed=p["seed"],
            include_bias=p["include_bias"], on_progress=on_progress, device=ctx.device, threads=settings.TERRAIN_WORKER_THREADS,
        ).to_dict()
    else:
        trajectory = plane_trajectory(p, record)
        surface = landscape.plane(
            loaded, (X, y), axes=p["axes"], resolution=p["resolution"], span=span, seed=p["seed"],
            include_bias=p["include_bias"], batchnorm=p["batchnorm"], trajectory=trajectory,
            resume=_resume_plane(ctx.previous_payloads("points"), p["resolution"]), on_progress=on_progress, device=ctx.device,
            threads=settings.TERRAIN_WORKER_THREADS,
        )
        result = surface.to_dict()
        if surface.trajectory is not None:
            ctx.emit("trajectory", {"trajectory": result["trajectory"], "trajectory_steps": result["trajectory_steps"],
                                    "trajectory_loss": result["trajectory_loss"]})
    result.update(mode=p["mode"], checkpoint=record.slug, checkpoint_name=record.name, eval_size=int(len(X)), device=ctx.device)
    return result


def hessian_run(ctx: JobContext) -> dict:
    """The spectrum in the one Hessian shape (webapp.landscapes.results.HessianResult), each part streamed when ready."""
    from analysis import curvature
    from analysis.curvature_results import Density, Eigenvalues, Trace
    from analysis.json_safe import finite_or_none
    from webapp.landscapes.results import HessianResult

    p = ctx.params
    record, loaded = _load_checkpoint(p["checkpoint"])
    X, y = _data(ctx)
    op = curvature.HessianOperator(loaded, None, (X, y), device=ctx.device)
    loss = finite_or_none(op.loss())
    ctx.emit("started", {"num_parameters": op.size, "loss": loss}, progress=0.02)

    eigenvalues = Eigenvalues.of(curvature.lanczos(op, p["top_k"], tol=1e-4, seed=p["seed"]))
    stages = 1 + p["trace"] + p["density"]
    ctx.emit("eigenvalues", eigenvalues.model_dump(), progress=1 / stages)
    trace = density = None
    if p["trace"]:
        trace = Trace.of(curvature.hutchpp(op, p["trace_matvecs"], seed=p["seed"]))
        ctx.emit("trace", trace.model_dump(), progress=2 / stages)
    if p["density"]:
        density = Density.of(curvature.spectral_density(op, num_probes=p["density_probes"], num_iters=p["density_iters"], seed=p["seed"]))
        ctx.emit("density", density.model_dump(), progress=1.0)
    return HessianResult(checkpoint=record.slug, checkpoint_name=record.name, eval_size=int(len(X)), device=ctx.device,
                         num_parameters=op.size, loss=loss, eigenvalues=eigenvalues, trace=trace, density=density,
                         num_matvecs=op.num_matvecs).model_dump(exclude_none=False)


def connectivity_run(ctx: JobContext) -> dict:
    from analysis import connectivity

    p = ctx.params
    record_a, a = _load_checkpoint(p["checkpoint"])
    record_b, b = _load_checkpoint(p["checkpoint_b"])
    X, y = _data(ctx)
    result: dict = {"checkpoint": record_a.slug, "checkpoint_b": record_b.slug, "names": [record_a.name, record_b.name],
                    "eval_size": int(len(X)), "device": ctx.device, "curves": {}}

    def curve(label: str, model_b, progress: float) -> None:
        interpolation = connectivity.interpolate(a, model_b, (X, y), steps=p["steps"])
        data = interpolation.to_dict()
        result["curves"][label] = data
        ctx.emit("curve", {"label": label, **data}, progress=progress)

    curve("naive", b.module, 0.45)
    alignment = connectivity.weight_matching(a.module, b.module)
    result["alignment"] = {"iterations": alignment.iterations, "seconds": alignment.seconds,
                           "changed_units": {k: int((np.asarray(v) != np.arange(len(v))).sum()) for k, v in alignment.permutations.items()}}
    ctx.emit("alignment", result["alignment"], progress=0.55)
    curve("aligned", alignment.model, 1.0)
    result["barriers"] = {label: data["barrier_height"] for label, data in result["curves"].items()}
    return result
