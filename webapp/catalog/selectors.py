"""Reads on the catalog: what a user may see, search and filters."""

from django.db.models import Count, Q, QuerySet

from webapp.catalog.models import Checkpoint, Experiment, Tag
from webapp.catalog.visibility import Visibility


def experiment_is_visible(*, experiment: Experiment, user) -> bool:
    if experiment.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return True
    return bool(user and user.is_authenticated and (user.is_staff or experiment.owner_id == user.pk))


def experiment_get_visible(*, slug: str, user) -> Experiment | None:
    experiment = Experiment.objects.filter(slug=slug).prefetch_related("tags").first()
    if experiment is None or not experiment_is_visible(experiment=experiment, user=user):
        return None
    return experiment


def experiments_public(*, query: str = "", tag: str = "") -> QuerySet[Experiment]:
    """The public catalog: featured first, then curated order, then newest."""
    experiments = Experiment.objects.filter(visibility=Visibility.PUBLIC)
    if query:
        experiments = experiments.filter(
            Q(title__icontains=query) | Q(description__icontains=query) | Q(tags__name__icontains=query)
        )
    if tag:
        experiments = experiments.filter(tags__slug=tag)
    return (
        experiments.distinct()
        .annotate(num_checkpoints=Count("checkpoints", distinct=True))
        .prefetch_related("tags")
        .order_by("-featured", "curated_order", "-created_at")
    )


def tags_in_public_catalog() -> QuerySet[Tag]:
    return Tag.objects.filter(experiments__visibility=Visibility.PUBLIC).distinct().order_by("name")


def experiments_of_user(*, user) -> QuerySet[Experiment]:
    return Experiment.objects.filter(owner=user).order_by("-created_at")


def checkpoint_get_visible(*, slug: str, user) -> Checkpoint | None:
    checkpoint = Checkpoint.objects.select_related("experiment", "parent").filter(slug=slug).first()
    if checkpoint is None or not experiment_is_visible(experiment=checkpoint.experiment, user=user):
        return None
    return checkpoint


def checkpoints_visible(*, user) -> QuerySet[Checkpoint]:
    visible = Q(experiment__visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
    if user and user.is_authenticated:
        if user.is_staff:
            return Checkpoint.objects.all()
        visible |= Q(experiment__owner=user)
    return Checkpoint.objects.filter(visible).select_related("experiment")
