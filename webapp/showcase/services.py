"""Writes: publish the showcase (idempotent), queueing the jobs the demo still lacks."""

from __future__ import annotations

from urllib.parse import urlencode

from django.db import transaction
from django.urls import reverse

from webapp.showcase import demo_minilm
from webapp.catalog.models import Checkpoint, Experiment
from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.services import job_create, job_params_validate
from webapp.showcase.definitions import ENTRIES, PRECOMPUTED_DIR, DemoObjects, Entry
from webapp.showcase.models import ShowcaseEntry
from webapp.showcase.precomputed import sweep_import

SHOWCASE_SLUG = "showcase"
KEEP = (JobStatus.SUCCEEDED, JobStatus.RUNNING)


def showcase_experiment(*, owner) -> Experiment:
    existing = Experiment.objects.filter(slug=SHOWCASE_SLUG).first()
    return existing or experiment_create(
        title="Showcase: one finished result of every kind", slug=SHOWCASE_SLUG, owner=owner, visibility=Visibility.PUBLIC,
        featured=True, tags=["demo", "showcase"],
        description="What Terrain computes, each finished on the demo models: loss surfaces, a Hessian spectrum, mode "
                    "connectivity, phase diagrams, lineage graphs. Each result page says what you are looking at.",
    )


def demo_objects(*, seeds_experiment: str, hf_graph, family: dict | None = None, minilm_experiment: str = "") -> DemoObjects:
    seeds = list(Checkpoint.objects.filter(experiment__slug=seeds_experiment).order_by("created_at", "pk"))
    minilm = Experiment.objects.filter(slug=minilm_experiment).first() if minilm_experiment else None
    return DemoObjects(seeds=seeds, hf_graph=hf_graph, family=family,
                       minilm_plane=demo_minilm.plane_params(minilm) if minilm is not None else None)


def run_url(kind: str, params: dict) -> str:
    """The kind's form, pre-filled (list values, such as the models of a merge, comma separated)."""
    flat = {key: ",".join(value) if isinstance(value, list) else value for key, value in params.items()}
    return f"{reverse('job_new', args=[kind])}?{urlencode(flat)}"


def showcase_publish(*, owner, objects: DemoObjects, log=print) -> list[ShowcaseEntry]:
    """Make sure every entry has its result: kept if finished or running, queued (after commit) if not."""
    experiment = showcase_experiment(owner=owner)
    return [_publish_entry(entry=entry, owner=owner, experiment=experiment, objects=objects, log=log) for entry in ENTRIES]


@transaction.atomic
def _publish_entry(*, entry: Entry, owner, experiment, objects: DemoObjects, log) -> ShowcaseEntry:
    row, _ = ShowcaseEntry.objects.get_or_create(key=entry.key, defaults={"title": entry.title, "family": entry.family})
    row.title, row.family, row.order, row.note = entry.title, entry.family, entry.order, entry.note
    if entry.url is not None:
        row.url = entry.url(objects) or ""
    elif entry.precomputed:
        path = PRECOMPUTED_DIR / entry.precomputed
        if (row.job is None or row.job.status != JobStatus.SUCCEEDED) and path.exists():
            log(f"loading the precomputed {entry.key} sweep ...")
            row.job = sweep_import(path=path, owner=owner, experiment=experiment)
        elif row.job is None:
            log(f"showcase {entry.key}: no precomputed sweep at {path}")
        row.run_url = f"{reverse('job_new', args=['sweep'])}?preset={entry.key}"
    elif (params := entry.params(objects)) is None:
        log(f"showcase {entry.key}: the demo content it needs is missing")
    else:
        row.run_url = run_url(entry.kind, params)
        if row.job is None or row.job.status not in KEEP:  # a queued job's message may be gone with an earlier broker
            validated = job_params_validate(kind=entry.kind, data={**params, "visibility": Visibility.PUBLIC}, user=owner)
            if row.job is not None and row.job.status == JobStatus.QUEUED:
                Job.objects.filter(pk=row.job.pk).update(status=JobStatus.CANCELLED)
            row.job = job_create(kind=entry.kind, params=validated.params, owner=owner, visibility=Visibility.PUBLIC,
                                 experiment=experiment, title=entry.title)
            log(f"queued the showcase {entry.key} ({entry.kind})")
    row.save()
    return row

