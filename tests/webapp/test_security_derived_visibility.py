"""Issue 9, item 1: a sweep's models follow the sweep's visibility at read time, and making
them is a POST (a GET, even a cross-site <img>, never writes)."""

import json

import pytest
from django.test import Client

from webapp.catalog.models import Checkpoint, Experiment
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.services import job_set_visibility

from .security_fixtures import sweep_with_model

pytestmark = pytest.mark.django_db


def test_a_get_on_the_landscape_action_writes_nothing(user, other_user, client, tmp_path):
    job, run = sweep_with_model(user, tmp_path)
    client.force_login(other_user)
    response = client.get(f"/phases/{job.slug}/run/{run.pk}/landscape")
    assert response.status_code == 405
    assert not Checkpoint.objects.exists() and not Experiment.objects.filter(source_job=job).exists()


def _derive(client, user, job, run) -> Checkpoint:
    client.force_login(user)
    response = client.post(f"/phases/{job.slug}/run/{run.pk}/landscape")
    assert response.status_code == 302, response.status_code
    client.logout()
    return Checkpoint.objects.get(slug=response["Location"].split("checkpoint=")[1].split("&")[0])


def _routes(checkpoint: Checkpoint) -> list[str]:
    return [f"/c/{checkpoint.slug}/", f"/c/{checkpoint.slug}/download", f"/e/{checkpoint.experiment.slug}/"]


def _job_on(client, checkpoint):
    return client.post("/api/jobs/", json.dumps({"kind": "landscape", "params": {"checkpoint": checkpoint.slug, "dataset": "digits",
                                                                               "resolution": 3, "eval_size": 10}}),
                       content_type="application/json")


def test_private_sweep_hides_the_models_made_from_it(user, other_user, tmp_path):
    job, run = sweep_with_model(user, tmp_path, visibility=Visibility.PUBLIC)
    owner_client, other_client, anonymous = Client(), Client(), Client()
    checkpoint = _derive(owner_client, other_user, job, run)  # any logged-in user may derive from a public sweep
    assert checkpoint.experiment.owner == user
    other_client.force_login(other_user)

    # While the sweep is public everybody sees its models and may start jobs on them.
    for client in (anonymous, other_client):
        assert [client.get(url).status_code for url in _routes(checkpoint)] == [200, 200, 200]
        assert checkpoint.experiment.slug in {e["slug"] for e in client.get("/api/experiments/").json()["experiments"]}
    assert checkpoint.experiment.title in anonymous.get("/").content.decode()
    assert _job_on(other_client, checkpoint).status_code == 201

    job_set_visibility(job=job, user=user, visibility=Visibility.PRIVATE)

    for client in (anonymous, other_client):
        assert [client.get(url).status_code for url in _routes(checkpoint)] == [404, 404, 404]
        assert checkpoint.experiment.slug not in {e["slug"] for e in client.get("/api/experiments/").json()["experiments"]}
    assert checkpoint.experiment.title not in anonymous.get("/").content.decode()
    queued = Job.objects.count()
    response = _job_on(other_client, checkpoint)
    assert response.status_code == 400 and "checkpoint" in response.json()["errors"]
    assert Job.objects.count() == queued

    owner_client.force_login(user)  # the owner still sees everything
    assert [owner_client.get(url).status_code for url in _routes(checkpoint)] == [200, 200, 200]


def test_a_sweeps_model_in_the_owners_public_experiment_follows_the_sweep(user, other_user, tmp_path, client):
    from webapp.catalog.services import experiment_create

    job, run = sweep_with_model(user, tmp_path, visibility=Visibility.PUBLIC)
    job.experiment = experiment_create(title="my public models", owner=user, visibility=Visibility.PUBLIC)
    job.save(update_fields=["experiment"])
    checkpoint = _derive(client, user, job, run)
    assert client.get(f"/c/{checkpoint.slug}/").status_code == 200
    job_set_visibility(job=job, user=user, visibility=Visibility.PRIVATE)
    assert client.get(f"/c/{checkpoint.slug}/").status_code == 404
    assert checkpoint.name not in client.get(f"/e/{checkpoint.experiment.slug}/").content.decode()
