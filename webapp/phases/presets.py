"""The preset phase diagrams, published in the catalog."""

from __future__ import annotations

from webapp.accounts.demo_account import demo_user
from webapp.catalog.models import Experiment
from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.services import job_create, job_params_validate
from webapp.phases.services import sweep_run_inline

PRESETS_EXPERIMENT = "phase-diagram-presets"


def presets_publish(*, names: list[str], log=print) -> list[Job]:
    """Run each named preset (skipping ones already published) into a public, featured experiment."""
    owner = demo_user(dev_accounts=False)
    experiment = Experiment.objects.filter(slug=PRESETS_EXPERIMENT).first() or experiment_create(
        title="Phase diagrams: grokking and load x temperature",
        slug=PRESETS_EXPERIMENT,
        owner=owner,
        description=(
            "Preset sweeps, reproducible from the Phase diagrams page. Grokking: weight decay x learning rate on "
            "modular addition with an MLP (Liu et al. 2022). Load x temperature: width x batch size on digits "
            "(Yang et al. 2021 taxonomy)."
        ),
        tags=["phase diagram", "grokking", "demo"],
        visibility=Visibility.PUBLIC,
        featured=True,
    )
    jobs = []
    for name in names:
        done = Job.objects.filter(kind="sweep", experiment=experiment, params__preset=name, status=JobStatus.SUCCEEDED).first()
        if done:
            log(f"preset {name}: already published at {done.get_absolute_url()}")
            jobs.append(done)
            continue
        validated = job_params_validate(kind="sweep", data={"preset": name, "visibility": Visibility.PUBLIC}, user=owner)
        job = job_create(kind="sweep", params=validated.params, owner=owner, visibility=Visibility.PUBLIC, experiment=experiment, enqueue=False)
        log(f"preset {name}: running {job.title} ({job.get_absolute_url()})")
        sweep_run_inline(job=job, log=log)
        jobs.append(job)
    return jobs
