"""The demo content: real small models, trained for real, published as a featured experiment."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db import transaction

from webapp.catalog.models import Experiment
from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_params_validate

logger = logging.getLogger(__name__)

DEMO_MINILM = True
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "terrain-demo"

DEMO_EXPERIMENTS = [
    {
        "slug": "digits-mlp-seeds",
        "title": "Digits MLP: three seeds",
        "description": (
            "The same 64-64-64-10 MLP trained on scikit-learn's 8x8 digits with three random seeds "
            "(SGD with momentum, lr 0.05, 40 epochs). Each run keeps 20 trajectory snapshots, the raw "
            "material for PCA landscapes and for linear mode connectivity between seeds."
        ),
        "tags": ["digits", "mlp", "seeds", "demo"],
        "featured": True,
        "order": 10,
        "runs": [
            {"dataset": "digits", "hidden": "64,64", "optimizer": "sgd", "lr": 0.05, "epochs": 40, "batch_size": 64, "seed": seed}
            for seed in (0, 1, 2)
        ],
    },
    {
        "slug": "moons-width",
        "title": "Two moons: narrow and wide MLPs",
        "description": "A 2-D toy problem where width visibly changes the decision boundary and the loss surface.",
        "tags": ["moons", "mlp", "width", "demo"],
        "featured": False,
        "order": 20,
        "runs": [
            {"dataset": "moons", "hidden": width, "optimizer": "adam", "lr": 0.01, "epochs": 60, "batch_size": 32, "seed": 0}
            for width in ("8", "64,64")
        ],
    },
]


def demo_user(*, dev_accounts: bool):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=DEMO_USERNAME)
    if created or dev_accounts:
        # On the local quick start the demo user may curate the catalog in the admin.
        user.is_staff = user.is_superuser = dev_accounts
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


def demo_publish(*, dev_accounts: bool = False, log=print) -> list[Experiment]:
    """Create (or complete) every demo experiment; runs that already succeeded are kept."""
    owner = demo_user(dev_accounts=dev_accounts)
    experiments = []
    for definition in DEMO_EXPERIMENTS:
        with transaction.atomic():
            experiment = Experiment.objects.filter(slug=definition["slug"]).first() or experiment_create(
                title=definition["title"],
                slug=definition["slug"],
                owner=owner,
                description=definition["description"],
                tags=definition["tags"],
                visibility=Visibility.PUBLIC,
                featured=definition["featured"],
            )
            if experiment.curated_order != definition["order"]:
                experiment.curated_order = definition["order"]
                experiment.save(update_fields=["curated_order"])
        for run in definition["runs"]:
            _demo_run(experiment=experiment, owner=owner, raw_params=run, log=log)
        experiments.append(experiment)
    if DEMO_MINILM:  # a real pretrained model brought in like a user's own (analysis.sources)
        from webapp.catalog import demo_minilm

        minilm = demo_minilm.publish(owner=owner, log=log, run_plane=False)  # the showcase queues its plane
        if minilm is not None:
            experiments.append(minilm)
    # Model-family trees: the real Hugging Face lineage snapshot (skipped, with a note, when absent).
    from webapp.lineage.services import hf_demo_publish

    lineage = hf_demo_publish(owner=owner, log=log)
    if lineage is not None:
        experiments.append(lineage.experiment)
    return experiments


def _demo_run(*, experiment: Experiment, owner, raw_params: dict, log, kind: str = "train") -> Job:
    """Run one public demo job in this process, unless the same job already succeeded."""
    validated = job_params_validate(kind=kind, data={**raw_params, "visibility": Visibility.PUBLIC}, user=owner)
    done = Job.objects.filter(experiment=experiment, kind=kind, params=validated.params, status=JobStatus.SUCCEEDED).first()
    if done is not None:
        return done
    job = job_create(
        kind=kind, params=validated.params, owner=owner, visibility=Visibility.PUBLIC, experiment=experiment, enqueue=False
    )
    log(f"running {job.title} ...")
    status = run_job(job.pk, device="cpu")
    if status != JobStatus.SUCCEEDED:
        job.refresh_from_db()
        raise RuntimeError(f"demo run {job.title} ended {status}: {job.error}")
    return job
