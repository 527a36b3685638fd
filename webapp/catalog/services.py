"""Writes on the catalog: experiments, tags, checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.utils.text import slugify

from webapp.catalog.models import Checkpoint, Experiment, Tag
from webapp.catalog.visibility import Visibility


def tags_get_or_create(*, names: list[str]) -> list[Tag]:
    tags = []
    for name in names:
        name = name.strip()
        if name:
            tag, _ = Tag.objects.get_or_create(slug=slugify(name)[:64], defaults={"name": name[:64]})
            tags.append(tag)
    return tags


def _unique_slug(base: str) -> str:
    base = slugify(base)[:100] or "experiment"
    slug, n = base, 1
    while Experiment.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def experiment_create(
    *,
    title: str,
    owner=None,
    description: str = "",
    tags: list[str] = (),
    visibility: str = Visibility.PRIVATE,
    featured: bool = False,
    slug: str | None = None,
    source_job=None,
) -> Experiment:
    experiment = Experiment.objects.create(
        title=title,
        slug=slug or _unique_slug(title),
        owner=owner,
        description=description,
        visibility=visibility,
        featured=featured,
        source_job=source_job,
    )
    experiment.tags.set(tags_get_or_create(names=list(tags)))
    return experiment


def experiment_sandbox_for(*, user) -> Experiment:
    """Each user's private default home for models trained without naming an experiment."""
    slug = f"sandbox-{user.pk}"
    experiment = Experiment.objects.filter(slug=slug).first()
    return experiment or experiment_create(
        title=f"{user.get_username()}'s sandbox", slug=slug, owner=user, description="Models you trained."
    )


def experiments_set_visibility(*, experiments, visibility: str) -> int:
    return experiments.update(visibility=visibility)


def experiments_set_featured(*, experiments, featured: bool) -> int:
    return experiments.update(featured=featured)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@transaction.atomic
def checkpoint_create_from_file(
    *,
    experiment: Experiment,
    name: str,
    path: Path,
    spec: dict,
    trajectory_path: Path | None = None,
    dataset: str = "",
    dataset_options: dict | None = None,
    metrics: dict | None = None,
    num_parameters: int = 0,
    parent: Checkpoint | None = None,
    relation: str = "",
    merge_parents: list[Checkpoint] = (),
    created_by_job=None,
    slug: str | None = None,
    source: str = "builtin",
    model_info: dict | None = None,
    suffix: str = ".safetensors",
) -> Checkpoint:
    """Copy a checkpoint file (already validated by analysis.checkpoints or analysis.sources) into the catalog.

    A merge names all its parents in ``merge_parents`` (``parent`` is the first of them).
    """
    checkpoint = Checkpoint(
        experiment=experiment,
        name=name,
        spec=spec,
        dataset=dataset,
        dataset_options=dataset_options or {},
        metrics=metrics or {},
        num_parameters=num_parameters,
        parent=parent,
        relation=relation,
        created_by_job=created_by_job,
        sha256=file_sha256(path),
        source=source,
        model_info=model_info or {},
    )
    if slug:
        checkpoint.slug = slug
    with open(path, "rb") as handle:
        checkpoint.file.save(f"{slugify(name) or 'model'}{suffix}", File(handle), save=False)
    if trajectory_path is not None:
        with open(trajectory_path, "rb") as handle:
            checkpoint.trajectory_file.save(f"{slugify(name) or 'model'}-trajectory.safetensors", File(handle), save=False)
    checkpoint.save()
    if merge_parents:
        checkpoint.merge_parents.set(merge_parents)
    return checkpoint
