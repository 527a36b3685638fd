"""Writes on logged runs: create, log metrics, add checkpoints, finish."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from webapp.catalog.models import Experiment
from webapp.catalog.services import file_sha256, experiment_create
from webapp.catalog.uploads import UploadRejected, checkpoint_upload, spool_upload
from webapp.runs import files
from webapp.runs.models import CheckpointSource, Run, RunCheckpoint, RunMetric

MAX_METRIC_ROWS_PER_CALL = 1000
MAX_METRICS_PER_ROW = 100
MAX_STEP = 2**62


class RunInvalid(ValueError):
    """Bad input from a script; `errors` maps field name -> messages (as the forms do)."""

    def __init__(self, errors: dict[str, list[str]], status: int = 400):
        self.errors = errors
        self.status = status
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))


def _experiment_for(*, owner, experiment: str) -> Experiment:
    """The owner's experiment with this slug or title, or a new private one with that title."""
    experiment = (experiment or "").strip()
    if not experiment:
        raise RunInvalid({"experiment": ["name an experiment (its title or slug)"]})
    if len(experiment) > 200:
        raise RunInvalid({"experiment": ["at most 200 characters"]})
    found = Experiment.objects.filter(owner=owner).filter(Q(slug=experiment) | Q(title=experiment)).order_by("created_at").first()
    return found or experiment_create(title=experiment, owner=owner, description="Logged from a training script.")


def run_create(*, owner, experiment: str, name: str = "", config: dict | None = None) -> Run:
    if config is not None and not isinstance(config, dict):
        raise RunInvalid({"config": ["must be a JSON object"]})
    name = (name or "").strip()
    if len(name) > 200:
        raise RunInvalid({"name": ["at most 200 characters"]})
    with transaction.atomic():
        exp = _experiment_for(owner=owner, experiment=experiment)
        return Run.objects.create(experiment=exp, owner=owner, name=name or f"run {exp.runs.count() + 1}", config=config or {})


def _step(value, field: str = "step") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEP:
        raise RunInvalid({field: [f"must be a whole number between 0 and {MAX_STEP}"]})
    return value


def _metric_values(values) -> dict:
    if not isinstance(values, dict) or not values:
        raise RunInvalid({"metrics": ["must be a non-empty JSON object of name -> number"]})
    if len(values) > MAX_METRICS_PER_ROW:
        raise RunInvalid({"metrics": [f"at most {MAX_METRICS_PER_ROW} metrics per step"]})
    for key, value in values.items():
        if not isinstance(key, str) or not 0 < len(key) <= 100:
            raise RunInvalid({"metrics": [f"metric names are 1-100 characters (got {key!r})"]})
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RunInvalid({f"metrics.{key}": ["must be a number (or null for NaN)"]})
    return values


def run_log_metrics(*, run: Run, rows) -> int:
    """Store metric rows; a step logged again merges its values (so a retried batch is harmless)."""
    if not isinstance(rows, list) or not rows:
        raise RunInvalid({"rows": ["must be a non-empty list of {step, metrics}"]})
    if len(rows) > MAX_METRIC_ROWS_PER_CALL:
        raise RunInvalid({"rows": [f"at most {MAX_METRIC_ROWS_PER_CALL} rows per call"]})
    merged: dict[int, dict] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise RunInvalid({"rows": ["each row is an object {step, metrics}"]})
        merged.setdefault(_step(row.get("step")), {}).update(_metric_values(row.get("metrics")))
    with transaction.atomic():
        existing = {m.step: m for m in RunMetric.objects.select_for_update().filter(run=run, step__in=list(merged))}
        for step, values in merged.items():
            if step in existing:
                existing[step].values = {**existing[step].values, **values}
                existing[step].save(update_fields=["values"])
            else:
                RunMetric.objects.create(run=run, step=step, values=values)
    return len(merged)


def run_checkpoint_add(*, run: Run, step, uploaded) -> tuple[RunCheckpoint, bool]:
    """Validate and keep the checkpoint of `step`; returns (entry, created).

    Sending the same file for the same step again (a retry after a dropped
    connection) returns the stored entry; a different file for a step already
    kept is refused, so nothing is overwritten.
    """
    step = _step(step)
    if uploaded is None:
        raise RunInvalid({"file": ["send the checkpoint as the multipart field 'file'"]})
    if not (uploaded.name or "").lower().endswith(".safetensors"):
        raise RunInvalid({"file": ["checkpoints must be .safetensors files"]})
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = spool_upload(uploaded, Path(tmp), ".safetensors")
        except UploadRejected as exc:
            raise RunInvalid({"file": [str(exc)]}) from None
        sha256 = file_sha256(path)
        previous = RunCheckpoint.objects.filter(run=run, step=step).first()
        if previous is not None:
            if previous.sha256 == sha256:
                return previous, False
            raise RunInvalid({"step": [f"step {step} already has a different checkpoint"]}, status=409)
        try:
            source = files.source_of(path)
            with transaction.atomic():
                return _keep(run=run, step=step, path=path, source=source, sha256=sha256, uploaded=uploaded), True
        except (files.CheckpointFileRejected, UploadRejected) as exc:
            raise RunInvalid({"file": [str(exc)]}) from None
        except IntegrityError:  # the same step arrived twice at once: the other request kept it
            previous = RunCheckpoint.objects.filter(run=run, step=step).first()
            if previous is not None and previous.sha256 == sha256:
                return previous, False
            raise RunInvalid({"step": [f"step {step} already has a different checkpoint"]}, status=409) from None


def _keep(*, run: Run, step: int, path: Path, source: str, sha256: str, uploaded) -> RunCheckpoint:
    entry = RunCheckpoint(run=run, step=step, source=source, sha256=sha256)
    if source == CheckpointSource.TERRAIN:
        uploaded.seek(0)
        checkpoint = checkpoint_upload(owner=run.owner, uploaded=uploaded, name=f"{run.name} step {step}", experiment=run.experiment)
        entry.checkpoint = checkpoint
        entry.num_parameters = checkpoint.num_parameters
    else:
        entry.config, entry.num_parameters = files.inspect_foreign(path, source)
        with open(path, "rb") as handle:
            entry.file.save(f"step-{step:012d}.safetensors", File(handle), save=False)
    entry.save()
    return entry


def run_finish(*, run: Run) -> Run:
    if run.finished_at is None:
        run.finished_at = timezone.now()
        run.save(update_fields=["finished_at"])
    return run

