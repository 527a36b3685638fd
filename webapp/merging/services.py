"""Running a merge job: sweep the method's knob scoring every task, then store the merge as a catalog child."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.urls import reverse

from webapp.catalog.models import Checkpoint, Experiment, Relation
from webapp.catalog.services import checkpoint_create_from_file, experiment_sandbox_for
from webapp.files import local_path
from webapp.jobs.context import JobContext
from webapp.landscapes import evaluation_sets
from webapp.merging import selectors

SWEEP_SHARE = 0.9  # of the progress bar; loading and saving share the rest


def catalog_checkpoints_load(slugs: list[str]):
    from analysis import checkpoints

    records = {c.slug: c for c in Checkpoint.objects.filter(slug__in=slugs).select_related("experiment")}
    missing = [s for s in slugs if s not in records]
    if missing:
        raise ValueError(f"checkpoint {missing[0]!r} no longer exists")
    return [records[s] for s in slugs], [checkpoints.load(local_path(records[s].file, sha256=records[s].sha256)) for s in slugs]


def _destination(ctx: JobContext, models: list[Checkpoint]) -> Experiment:
    """Where the merge lands: the job's experiment, else the models' own if the owner owns it, else the sandbox."""
    if ctx.job.experiment is not None:
        return ctx.job.experiment
    home = models[0].experiment
    if ctx.job.owner_id is not None and home.owner_id == ctx.job.owner_id:
        return home
    if ctx.job.owner is None:
        raise ValueError("a merge job without an owner must name an experiment")
    return experiment_sandbox_for(user=ctx.job.owner)


def merged_checkpoint_create(*, ctx: JobContext, state: dict, spec: dict, name: str, recipe: dict, metrics: dict,
                             base: Checkpoint | None, models: list[Checkpoint]) -> Checkpoint:
    """The merged model as a catalog child of all its parents (relation ``merge``); once per job."""
    from analysis import checkpoints

    existing = Checkpoint.objects.filter(created_by_job=ctx.job).first()
    if existing is not None:  # a retried job keeps the merge its first attempt stored
        return existing
    parents = ([base] if base is not None else []) + models
    with tempfile.TemporaryDirectory() as folder:
        path = checkpoints.save(Path(folder) / "merged.safetensors", state, spec, {"merge": recipe})
        return checkpoint_create_from_file(
            # The parents' own spec record, so "same architecture" checks compare like with like.
            experiment=_destination(ctx, models), name=name, path=path, spec=parents[0].spec, dataset=parents[0].dataset,
            dataset_options=parents[0].dataset_options, metrics=metrics, num_parameters=parents[0].num_parameters,
            parent=parents[0], relation=Relation.MERGE, merge_parents=parents, created_by_job=ctx.job,
        )


def _flat_metrics(results: dict) -> dict:
    out = {}
    for task, values in results.items():
        for key, value in values.items():
            if value is not None:
                out[f"{key} ({task})" if task != "mean" else f"mean {key}"] = value
    return out


def merge_run(ctx: JobContext) -> dict:
    from analysis import merging

    p = ctx.params
    models, loaded = catalog_checkpoints_load(p["models"])
    base, base_loaded = (None, None)
    if p.get("base"):
        (base,), (base_loaded,) = catalog_checkpoints_load([p["base"]])
    spec = loaded[0].spec
    method = merging.get_method(p["method"])
    class_lists = evaluation_sets.parse_class_lists(p.get("tasks", ""))
    tasks = evaluation_sets.tasks_for(class_lists=class_lists, datasets=evaluation_sets.own_datasets(models),
                                      split=p["split"], size=p["eval_size"], owner_id=ctx.job.owner_id)
    values = merging.knob_values(p["method"], p["sweep_steps"], p["sweep_from"], p["sweep_to"])
    ctx.emit("start", {"method": method.name, "method_label": method.label, "citation": method.citation,
                       "knob": method.knob.name, "knob_label": method.knob.label, "values": values,
                       "tasks": [t.name for t in tasks], "models": [m.name for m in models],
                       "base": base.name if base else None}, progress=0.01)
    params = {"lam": p["lam"], "p": p["p"], "seed": p["seed"]}
    merged_at = merging.prepare(p["method"], base=base_loaded.state if base_loaded else None,
                                models=[c.state for c in loaded], spec=spec, params=params)

    def on_point(event: dict) -> None:
        ctx.emit("point", {k: event[k] for k in ("index", "total", "value", "results", "score")},
                 progress=0.05 + SWEEP_SHARE * (event["index"] + 1) / event["total"])

    curve = merging.sweep_prepared(merged_at, p["method"], tasks=tasks, values=values, spec=spec, on_progress=on_point)
    value = curve.best.value if p.get("save_at") is None else float(p["save_at"])
    state = merged_at(value)
    results = merging.evaluate_state(state, tasks, spec=spec)
    recipe = {"method": method.name, "knob": method.knob.name, "value": value, "params": params,
              "base": base.slug if base else None, "models": [m.slug for m in models]}
    name = p.get("name") or f"{method.label} of {len(models)} ({method.knob.name}={value:.3g})"
    merged = merged_checkpoint_create(ctx=ctx, state=state, spec=spec, name=name[:200], recipe=recipe,
                                      metrics={**_flat_metrics(results), method.knob.name: value}, base=base, models=models)
    corners = selectors.plane_corners(base=base, models=models)
    links = {"url": merged.get_absolute_url(), "tree_url": reverse("lineage:checkpoint", args=[merged.slug]),
             "plane_url": selectors.three_model_plane_url(corners=corners, markers=[merged], tasks=p.get("tasks", ""),
                                                          split=p["split"], eval_size=p["eval_size"]) if corners else None}
    saved = {"slug": merged.slug, "name": merged.name, "value": value, "results": results, **links}
    ctx.emit("checkpoint", saved, progress=1.0)
    return {"method": method.name, "knob": method.knob.name, "sweep": curve.to_dict(), "saved": saved,
            "tasks": [t.name for t in tasks], "models": [m.slug for m in models], "base": base.slug if base else None}
