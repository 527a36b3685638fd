"""One result shape per kind: the Hessian spectrum is the same from the CLI, the job and a sweep's runs
(tests/phases/test_phases_runs.py); an ill-shaped
result fails its job instead of reaching the page, the exports and the API."""

import pytest

from analysis.curvature_results import HessianSpectrum
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_finish, job_params_validate

pytestmark = pytest.mark.django_db


def test_the_hessian_job_and_the_cli_report_one_shape(user, tmp_path):
    from analysis import checkpoints, curvature
    from webapp.landscapes.evaluation_data import evaluation_data

    checkpoint = trained_checkpoint(user, tmp_path)
    validated = job_params_validate(kind="hessian", data={"checkpoint": checkpoint.slug, "eval_size": 200, "top_k": 2,
                                                          "trace_matvecs": 12, "visibility": Visibility.PUBLIC}, user=user)
    job = job_create(kind="hessian", params=validated.params, owner=user, enqueue=False)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    from_job = HessianSpectrum.model_validate(job.result)

    X, y = evaluation_data(dataset="digits", split="train", size=200, owner_id=user.pk)
    from_cli = HessianSpectrum.model_validate(curvature.analyze(checkpoints.load(checkpoint.file.path), (X, y), top_k=2,
                                                                trace=True, trace_matvecs=12, density=False))
    # the same checkpoint, data and seed: the same numbers, whoever asked
    assert from_cli.eigenvalues.values == pytest.approx(from_job.eigenvalues.values, rel=1e-6)
    assert from_cli.trace.estimate == pytest.approx(from_job.trace.estimate, rel=1e-6)
    assert from_job.num_parameters == checkpoint.num_parameters and from_job.top_eigenvalue == from_job.eigenvalues.values[0]


@pytest.mark.parametrize("kind", ["landscape", "hessian", "connectivity", "sweep", "train"])
def test_the_kinds_declare_their_result(kind):
    assert kinds.get(kind).result is not None


def test_an_ill_shaped_result_fails_the_job_and_is_not_stored(user):
    job = Job.objects.create(kind="hessian", owner=user, status=JobStatus.RUNNING)
    old_shape = {"top_eigenvalues": [3.0, 1.0], "num_parameters": 10}  # the CLI's former shape
    job_finish(job=job, status=JobStatus.SUCCEEDED, result=old_shape)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.result is None
    assert "the hessian result is ill-shaped" in job.error and "eigenvalues" in job.error
    assert job.events.last().payload["status"] == JobStatus.FAILED
