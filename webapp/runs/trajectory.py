"""A logged run's checkpoints as one analysis trajectory (what the PCA plane and its drawing use)."""

from __future__ import annotations

from webapp.files import local_path
from webapp.runs.models import Run
from webapp.runs.selectors import run_checkpoints, run_trajectory_checkpoints


def run_trajectory(*, run_slug: str, spec: dict):
    """Load every Terrain checkpoint of the run with this spec, in step order, as an analysis Trajectory."""
    from analysis import checkpoints

    run = Run.objects.get(slug=run_slug)
    steps_by_checkpoint = {e.checkpoint_id: e.step for e in run_checkpoints(run=run)}
    records = run_trajectory_checkpoints(run=run, spec=spec)
    states = [checkpoints.load(local_path(record.file, sha256=record.sha256)).state for record in records]
    return checkpoints.Trajectory(steps=[steps_by_checkpoint[r.pk] for r in records], states=states, spec=spec, meta={"run": run_slug})
