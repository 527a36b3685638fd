import json
import os
import subprocess
import sys

import pytest

from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_enqueue(monkeypatch):
    from webapp.jobs import services

    queued = []
    monkeypatch.setattr(services, "job_enqueue", lambda *, job: queued.append(job.slug))
    return queued


@pytest.mark.parametrize("url", ["/r/nope/", "/e/nope/", "/c/nope/", "/c/nope/download", "/jobs/new/nope/", "/r/nope/export.json"])
def test_unknown_slugs_are_404(client, user, url):
    client.force_login(user)
    assert client.get(url).status_code == 404


def test_api_unknown_job_is_json_404(client):
    response = client.get("/api/jobs/nope/")
    assert response.status_code == 404 and response.json()["error"] == "no such job"


def test_private_result_hidden_from_anonymous_and_others(client, user, other_user):
    job = Job.objects.create(kind="train", owner=user, visibility=Visibility.PRIVATE)
    assert client.get(job.get_absolute_url()).status_code == 404
    assert client.get(f"/api/jobs/{job.slug}/").status_code == 404
    assert client.get(f"/api/jobs/{job.slug}/events/").status_code == 404
    client.force_login(other_user)
    assert client.get(job.get_absolute_url()).status_code == 404
    client.force_login(user)
    assert client.get(job.get_absolute_url()).status_code == 200


def test_unlisted_result_open_to_anyone_with_link(client, user):
    job = Job.objects.create(kind="train", owner=user, visibility=Visibility.UNLISTED)
    response = client.get(job.get_absolute_url())
    assert response.status_code == 200 and job.slug.encode() in response.content


def test_form_errors_name_the_field(client, user, no_enqueue):
    client.force_login(user)
    response = client.post("/jobs/new/train/", {"dataset": "digits", "hidden": "64,x", "lr": "0", "epochs": "5", "batch_size": "64", "seed": "0", "snapshots": "5", "optimizer": "sgd", "momentum": "0.9", "weight_decay": "0"})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-field="hidden"' in body and 'data-field="lr"' in body
    assert Job.objects.count() == 0 and no_enqueue == []


def test_form_creates_job_and_redirects_to_permalink(client, user, no_enqueue, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/jobs/new/train/", {"dataset": "digits", "hidden": "16", "lr": "0.1", "epochs": "2", "batch_size": "64", "seed": "1", "snapshots": "5", "optimizer": "sgd", "momentum": "0.9", "weight_decay": "0", "visibility": "unlisted"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/r/{job.slug}/"
    assert job.params["hidden"] == [16] and job.visibility == "unlisted"
    assert no_enqueue == [job.slug]


def test_new_job_needs_login(client):
    assert client.get("/jobs/new/train/").status_code == 302


def test_api_validation_errors(client, user, no_enqueue):
    client.force_login(user)
    response = client.post("/api/jobs/", json.dumps({"kind": "train", "params": {"hidden": "0", "epochs": -1}}), content_type="application/json")
    assert response.status_code == 400
    assert {"hidden", "epochs"} <= set(response.json()["errors"])
    response = client.post("/api/jobs/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = client.post("/api/jobs/", json.dumps({"kind": "nope", "params": {}}), content_type="application/json")
    assert response.status_code == 400 and "kind" in response.json()["errors"]
    response = client.post("/api/jobs/", json.dumps({"kind": "train", "params": [1]}), content_type="application/json")
    assert response.status_code == 400 and "params" in response.json()["errors"]
    assert Job.objects.count() == 0


def test_api_create_requires_login(client):
    response = client.post("/api/jobs/", json.dumps({"kind": "train", "params": {}}), content_type="application/json")
    assert response.status_code == 401


def test_api_create(client, user, no_enqueue, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/jobs/", json.dumps({"kind": "train", "params": {"hidden": "8", "epochs": 1}, "visibility": "public"}), content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["url"].endswith(f"/r/{body['slug']}/")
    assert no_enqueue == [body["slug"]]


def test_cancel_by_other_user_is_forbidden(client, user, other_user):
    job = Job.objects.create(kind="train", owner=user, visibility=Visibility.PUBLIC)
    client.force_login(other_user)
    assert client.post(f"/r/{job.slug}/cancel").status_code == 403
    assert client.post(f"/api/jobs/{job.slug}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.parametrize("debug", [True, False])
def test_a_post_without_its_routes_trailing_slash_is_served_by_that_route(client, user, settings, debug):
    """Django redirected it (dropping the body) or, with DEBUG on as in the quick start, raised RuntimeError: a 500."""
    settings.DEBUG = debug
    job = Job.objects.create(kind="train", owner=user, visibility=Visibility.PUBLIC)
    client.force_login(user)
    response = client.post(f"/api/jobs/{job.slug}/cancel")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["status"] == "cancelled"
    assert client.post("/api/jobs/nope/cancel").status_code == 404
    assert client.post("/api/jobs", json.dumps({"kind": "train", "params": {"epochs": 0}}),
                       content_type="application/json").status_code == 400
    assert client.get("/api/jobs").status_code == 301  # reads still redirect to the slashed URL


def test_home_lists_public_catalog_featured_first(client, user):
    experiment_create(title="Ordinary", owner=user, visibility=Visibility.PUBLIC)
    experiment_create(title="Star", owner=user, visibility=Visibility.PUBLIC, featured=True)
    experiment_create(title="Secret", owner=user)
    body = client.get("/").content.decode()
    assert body.index("Star") < body.index("Ordinary") and "Secret" not in body


def test_plotly_is_served_from_our_static_files(client):
    from django.contrib.staticfiles import finders

    assert finders.find("vendor/plotly.min.js").endswith("plotly.min.js")


def test_openapi_schema(client):
    schema = client.get("/api/schema/").json()
    assert schema["openapi"].startswith("3.") and "/api/jobs/" in schema["paths"]


def test_check_deploy_has_no_warnings():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
        "DJANGO_ALLOWED_HOSTS": "terrain.example.org",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for the Playwright tests only
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_every_page_with_its_own_head_names_the_inline_icon():
    """A page without one makes the browser ask for /favicon.ico, a 404 (the lineage embeds did)."""
    from pathlib import Path

    from django.conf import settings

    templates = [p for root in settings.TEMPLATES[0]["DIRS"] for p in Path(root).rglob("*.html")]
    heads = [p for p in templates if "<head>" in p.read_text()]
    assert len(heads) >= 4
    assert [p.name for p in heads if '{% include "includes/favicon.html" %}' not in p.read_text()] == []
