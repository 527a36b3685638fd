"""The run page, the API schema covering every API route, and the form's answer over the limit."""

import pytest

from webapp.runs.services import run_create, run_log_metrics

pytestmark = pytest.mark.django_db


def test_run_page_shows_metrics_to_the_owner_and_is_404_to_others(client, user, other_user):
    run = run_create(owner=user, experiment="paged", name="baseline")
    run_log_metrics(run=run, rows=[{"step": 0, "metrics": {"loss": 2.5}}, {"step": 1, "metrics": {"loss": 1.5}}])
    client.force_login(other_user)
    assert client.get(run.get_absolute_url()).status_code == 404
    client.force_login(user)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200 and b"baseline" in page.content and b'"loss": 1.5' in page.content
    experiment_page = client.get(run.experiment.get_absolute_url())
    assert run.get_absolute_url().encode() in experiment_page.content


@pytest.mark.parametrize("rows, field", [
    ([{"step": -1, "metrics": {"loss": 1}}], "step"),
    ([{"step": 1, "metrics": {"loss": "high"}}], "metrics.loss"),
    ([{"step": 1, "metrics": {}}], "metrics"),
    ("nope", "rows"),
])
def test_bad_metric_rows_name_their_field(client, user, rows, field):
    run = run_create(owner=user, experiment="bad rows")
    client.force_login(user)
    response = client.post(f"/api/runs/{run.slug}/metrics/", {"rows": rows}, content_type="application/json")
    assert response.status_code == 400 and list(response.json()["errors"]) == [field]


def test_schema_documents_every_api_route_and_bearer_auth(client):
    from webapp.api.app import api

    schema = client.get("/api/schema/").json()
    documented = set(schema["paths"])
    routes = {"/api/" + str(p.pattern).replace("<slug>", "{slug}") for p in api.urls[0]}
    assert routes - {"/api/schema/"} <= documented and "/api/runs/{slug}/checkpoints/" in documented
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "429" in schema["paths"]["/api/jobs/"]["post"]["responses"]


def test_the_job_form_over_the_limit_says_so_with_retry_after(client, user, settings, monkeypatch):
    from webapp.jobs import services

    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)
    settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE = 1
    client.force_login(user)
    form = {"dataset": "digits", "hidden": "8", "optimizer": "sgd", "lr": "0.1", "momentum": "0.9", "weight_decay": "0",
            "batch_size": "64", "epochs": "1", "seed": "0", "snapshots": "5", "visibility": "private"}
    assert client.post("/jobs/new/train/", form).status_code == 302
    response = client.post("/jobs/new/train/", form)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert b"at most 1 jobs per minute" in response.content
