"""Running the plane through three models: one surface per task, each model and merge marked on it."""

from __future__ import annotations

from django.conf import settings

from webapp.catalog.models import Checkpoint
from webapp.jobs.context import JobContext


def _named(markers: list[dict] | None, names: dict[str, str]) -> list[dict] | None:
    if markers is None:
        return None
    return [{**m, "name": names.get(m["name"], m["name"]), "role": m["name"] if m["name"] in ("A", "B", "C") else "marker"}
            for m in markers]


def three_model_plane_run(ctx: JobContext, record: Checkpoint, loaded, load_checkpoint, data_for) -> dict:
    """``data_for(class_list or None) -> (X, y)``; ``load_checkpoint(slug) -> (record, loaded)``."""
    from analysis import landscape
    from webapp.landscapes.evaluation_sets import parse_class_lists

    p = ctx.params
    b_record, b = load_checkpoint(p["checkpoint_b"])
    c_record, c = load_checkpoint(p["checkpoint_c"])
    marker_records = [load_checkpoint(slug) for slug in p.get("markers", [])]
    # Markers are keyed by slug for the analysis (names need not be unique), shown by name.
    names = {"A": record.name, "B": b_record.name, "C": c_record.name, **{r.slug: r.name for r, _ in marker_records}}
    class_lists = parse_class_lists(p.get("tasks", "")) or [None]
    surfaces: dict[str, dict] = {}
    for k, classes in enumerate(class_lists):
        task = "digits " + "".join(map(str, classes)) if classes else p["dataset"]
        X, y = data_for(classes)

        def on_progress(event: dict, task=task, k=k) -> None:
            if event.get("type") == "start":
                payload = {key: v for key, v in event.items() if key != "type"}
                ctx.emit("start", {**payload, "task": task, "markers": _named(event.get("markers"), names)})
            elif event.get("type") == "points":
                payload = {key: event[key] for key in ("points", "done", "total", "level", "levels") if key in event}
                fraction = (k + event["done"] / max(1, event["total"])) / len(class_lists)
                ctx.emit("points", {**payload, "task": task}, progress=fraction)

        surface = landscape.plane(
            loaded, (X, y), axes="three_models", models=(b.state(), c.state()),
            markers={r.slug: m.state() for r, m in marker_records}, resolution=p["resolution"], span=p["span"] or None,
            batchnorm=p["batchnorm"], on_progress=on_progress, device=ctx.device, threads=settings.TERRAIN_WORKER_THREADS,
        )
        result = surface.to_dict()
        result["markers"] = _named(result["markers"], names)
        ctx.emit("markers", {"task": task, "markers": result["markers"]})
        surfaces[task] = result
    first = next(iter(surfaces.values()))
    return {**first, "tasks": surfaces, "task_names": list(surfaces),
            "corners": [record.slug, b_record.slug, c_record.slug], "eval_size": int(len(X))}
