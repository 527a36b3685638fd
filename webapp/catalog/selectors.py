"""Reads on the catalog: what a user may see, search and filters."""

from django.db.models import Count, Q, QuerySet

from webapp.catalog.models import Checkpoint, Experiment, Tag
from webapp.catalog.visibility import Visibility, open_to


def experiment_visible_q(user, prefix: str = "") -> Q:
    """Experiments `user` may open.  One made to hold a job's models (a sweep's) follows that
    job's visibility at read time, so making the job private hides it at once."""
    own = Q(**{f"{prefix}source_job__isnull": True}) & open_to(user, prefix)
    derived = Q(**{f"{prefix}source_job__isnull": False}) & open_to(user, f"{prefix}source_job__")
    return own | derived


def checkpoint_visible_q(user) -> Q:
    """Checkpoints `user` may open: the experiment is visible and so is the job that made it."""
    made_by_visible_job = Q(created_by_job__isnull=True) | open_to(user, "created_by_job__")
    return experiment_visible_q(user, "experiment__") & made_by_visible_job


def experiment_is_visible(*, experiment: Experiment, user) -> bool:
    return Experiment.objects.filter(pk=experiment.pk).filter(experiment_visible_q(user)).exists()


def experiment_get_visible(*, slug: str, user) -> Experiment | None:
    """The experiment behind a link, or None when it does not exist or `user` may not see it."""
    return Experiment.objects.filter(experiment_visible_q(user), slug=slug).prefetch_related("tags").first()


def _listed() -> Q:
    return Q(source_job__isnull=True, visibility=Visibility.PUBLIC) | Q(source_job__visibility=Visibility.PUBLIC)


def experiments_public(*, query: str = "", tag: str = "") -> QuerySet[Experiment]:
    """The public catalog: featured first, then curated order, then newest."""
    experiments = Experiment.objects.filter(_listed())
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
    listed = Experiment.objects.filter(_listed())
    return Tag.objects.filter(experiments__in=listed).distinct().order_by("name")


def experiments_of_user(*, user) -> QuerySet[Experiment]:
    return Experiment.objects.filter(owner=user).order_by("-created_at")


def checkpoint_get_visible(*, slug: str, user) -> Checkpoint | None:
    return Checkpoint.objects.select_related("experiment", "parent").filter(checkpoint_visible_q(user), slug=slug).first()


def checkpoints_visible(*, user) -> QuerySet[Checkpoint]:
    return Checkpoint.objects.filter(checkpoint_visible_q(user)).select_related("experiment")


def checkpoints_of_experiment(*, experiment: Experiment, user) -> QuerySet[Checkpoint]:
    return checkpoints_visible(user=user).filter(experiment=experiment)


def architecture_label(spec: dict) -> str:
    """"mlp 64x64" for a built-in spec; the architecture (or model type) of a user's own model."""
    if "kind" not in spec:
        return str(spec.get("architecture") or spec.get("model_type") or spec.get("source") or "?")
    hidden = spec.get("hidden") or spec.get("channels")
    return str(spec["kind"]) + (" " + "x".join(map(str, hidden)) if isinstance(hidden, list) else "")
