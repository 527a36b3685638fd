"""Reads on logged runs: who may see them, their metrics and trajectory."""

from __future__ import annotations

from webapp.catalog.selectors import experiment_is_visible
from webapp.runs.models import CheckpointSource, Run, RunCheckpoint


def run_get_visible(*, slug: str, user) -> Run | None:
    """A run is visible to whoever may see its experiment; otherwise it does not exist (404)."""
    run = Run.objects.select_related("experiment", "owner").filter(slug=slug).first()
    if run is None or not experiment_is_visible(experiment=run.experiment, user=user):
        return None
    return run


def run_can_write(*, run: Run, user) -> bool:
    return bool(user and user.is_authenticated and run.owner_id == user.pk)


def run_checkpoints(*, run: Run):
    return RunCheckpoint.objects.filter(run=run).select_related("checkpoint").order_by("step")


def run_trajectory_checkpoints(*, run: Run, spec: dict | None = None) -> list:
    """The run's Terrain-spec checkpoints in step order (of one architecture, when `spec` is given)."""
    entries = run_checkpoints(run=run).filter(source=CheckpointSource.TERRAIN, checkpoint__isnull=False)
    return [e.checkpoint for e in entries if spec is None or e.checkpoint.spec == spec]


def run_latest_checkpoint(*, run: Run):
    checkpoints = run_trajectory_checkpoints(run=run)
    return checkpoints[-1] if checkpoints else None


def run_state(run: Run, *, build_url=lambda path: path) -> dict:
    return {
        "slug": run.slug,
        "name": run.name,
        "experiment": run.experiment.slug,
        "config": run.config,
        "finished": run.finished_at is not None,
        "url": build_url(run.get_absolute_url()),
        "checkpoints": [
            {"step": e.step, "source": e.source, "sha256": e.sha256, "num_parameters": e.num_parameters,
             "checkpoint": e.checkpoint.slug if e.checkpoint else None}
            for e in run_checkpoints(run=run)
        ],
        "metric_steps": run.metric_rows.count(),
    }


def run_metrics(*, run: Run) -> list[dict]:
    return [{"step": row.step, "metrics": row.values} for row in run.metric_rows.order_by("step")]
