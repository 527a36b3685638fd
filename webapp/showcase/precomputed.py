"""Finished sweeps as data: exported once from a real run, loaded by the demo in a second.

A phase diagram trains dozens of models (minutes to tens of minutes on two cores),
more than the quick start may take. ``manage.py export_sweep SLUG FILE`` writes a
finished sweep as it is stored (the job, every event it streamed, its runs'
curves and metrics, its cells); :func:`sweep_import` recreates it as a finished,
public job whose pages, heatmap, cell drill-down and exports work as the
original's. The runs' weights are not kept (the files would be large), so the
per-model landscape buttons are absent on an imported diagram.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobEvent, JobStatus
from webapp.phases.models import SweepCell, SweepRun

FORMAT = "terrain-sweep/1"


def sweep_export(*, job: Job) -> dict:
    if job.kind != "sweep" or job.status != JobStatus.SUCCEEDED:
        raise ValueError(f"{job.slug} is not a finished sweep")
    return {
        "format": FORMAT,
        "title": job.title,
        "params": job.params,
        "result": job.result,
        "events": [{"kind": e.kind, "payload": e.payload} for e in job.events.order_by("seq")],
        "runs": [{"i": r.i, "j": r.j, "seed": r.seed, "config": r.config, "status": r.status, "result": r.result,
                  "attempts": r.attempts} for r in SweepRun.objects.filter(job=job).order_by("i", "j", "seed")],
        "cells": [{"i": c.i, "j": c.j, "result": c.result, "grokking_label": c.grokking_label,
                   "taxonomy_label": c.taxonomy_label} for c in SweepCell.objects.filter(job=job).order_by("i", "j")],
    }


def sweep_write(*, job: Job, path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") if path.suffix == ".gz" else open(path, "w", encoding="utf-8") as out:
        json.dump(sweep_export(job=job), out, separators=(",", ":"))


def _read(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return data


@transaction.atomic
def sweep_import(*, path: Path, owner, experiment) -> Job:
    """A finished public sweep job from an exported file (see the module docstring)."""
    data = _read(path)
    now = timezone.now()
    job = Job.objects.create(
        kind="sweep", title=data["title"], params=data["params"], result=data["result"], status=JobStatus.SUCCEEDED,
        progress=1.0, owner=owner, visibility=Visibility.PUBLIC, experiment=experiment, device="cpu",
        last_seq=len(data["events"]), started_at=now, finished_at=now,
    )
    JobEvent.objects.bulk_create(
        [JobEvent(job=job, seq=k, kind=e["kind"], payload=e["payload"]) for k, e in enumerate(data["events"], start=1)]
    )
    SweepRun.objects.bulk_create([
        SweepRun(job=job, i=r["i"], j=r["j"], seed=r["seed"], config=r["config"], status=r["status"], result=r["result"],
                 attempts=r["attempts"], started_at=now, finished_at=now)
        for r in data["runs"]
    ])
    SweepCell.objects.bulk_create([
        SweepCell(job=job, i=c["i"], j=c["j"], result=c["result"], grokking_label=c["grokking_label"],
                  taxonomy_label=c["taxonomy_label"])
        for c in data["cells"]
    ])
    return job
