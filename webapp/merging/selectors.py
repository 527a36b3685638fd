"""Reads for merging: which checkpoints can be merged together, and links onward."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from webapp.catalog.models import Checkpoint
from webapp.catalog.selectors import checkpoints_visible, experiment_get_visible

MAX_CHOICES = 300


def merge_candidates(*, user, experiment_slug: str = "") -> list[Checkpoint]:
    """The checkpoints offered for merging: one family's (an experiment's) or every one the user can see."""
    if experiment_slug:
        experiment = experiment_get_visible(slug=experiment_slug, user=user)
        if experiment is None:
            return []
        return list(experiment.checkpoints.select_related("experiment").order_by("created_at", "pk")[:MAX_CHOICES])
    return list(checkpoints_visible(user=user).order_by("-created_at", "pk")[:MAX_CHOICES])


def three_model_plane_url(*, corners: list[Checkpoint], markers: list[Checkpoint], tasks: str, split: str,
                          eval_size: int) -> str:
    """The landscape form, filled in for the plane through ``corners`` with ``markers`` on it."""
    a, b, c = corners
    query = {"mode": "plane", "axes": "three_models", "checkpoint": a.slug, "checkpoint_b": b.slug,
             "checkpoint_c": c.slug, "markers": ",".join(m.slug for m in markers), "tasks": tasks,
             "resolution": 21, "split": split, "eval_size": eval_size, "dataset": "checkpoint"}
    return reverse("job_new", args=["landscape"]) + "?" + urlencode(query)


def plane_corners(*, base: Checkpoint | None, models: list[Checkpoint]) -> list[Checkpoint] | None:
    """Base and the first two models, or the first three models; None when fewer than three."""
    corners = ([base] if base is not None else []) + list(models)
    return corners[:3] if len(corners) >= 3 else None
