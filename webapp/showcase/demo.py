"""The demo experiments: real small models, trained for real in this process, published as featured experiments."""

from __future__ import annotations

from django.db import transaction

from webapp.accounts.demo_account import demo_user
from webapp.catalog.models import Experiment
from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_params_validate


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


def demo_publish(*, dev_accounts: bool = False, log=print) -> list[Experiment]:
    """Create (or complete) every demo training experiment; runs that already succeeded are kept."""
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
            demo_run(experiment=experiment, owner=owner, raw_params=run, log=log)
        experiments.append(experiment)
    return experiments


def demo_run(*, experiment: Experiment, owner, raw_params: dict, log, kind: str = "train") -> Job:
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
