"""Issue 9, item 5: per-user job limits (429 with Retry-After, on the form, the JSON API and
the service itself), login lockout after repeated wrong passwords, signups per address."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from webapp.jobs.models import Job, JobStatus
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.django_db

TRAIN = {"dataset": "moons", "hidden": "4", "epochs": 1}


@pytest.fixture(autouse=True)
def fresh_axes():
    from axes.utils import reset as axes_reset

    axes_reset()  # no failed logins carried over from another test
    yield
    axes_reset()


@pytest.fixture
def no_enqueue(monkeypatch):
    from webapp.jobs import services

    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)


def _api_submit(client):
    return client.post("/api/jobs/", json.dumps({"kind": "train", "params": TRAIN}), content_type="application/json")


def test_queued_jobs_are_limited_per_user(client, user, other_user, settings, no_enqueue):
    settings.TERRAIN_MAX_ACTIVE_JOBS_PER_USER = 3
    client.force_login(user)
    assert [_api_submit(client).status_code for _ in range(3)] == [201, 201, 201]
    refused = _api_submit(client)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "limit is 3" in refused.json()["errors"]["jobs"][0]
    form = client.post("/jobs/new/train/", TRAIN)
    assert form.status_code == 429 and int(form["Retry-After"]) > 0 and 'data-field="jobs"' in form.content.decode()
    assert Job.objects.filter(owner=user).count() == 3
    from webapp.jobs.limits import LimitExceeded

    with pytest.raises(LimitExceeded):  # the submitting service itself refuses, whatever the entry point
        job_submit(validated=job_params_validate(kind="train", data=TRAIN, user=user), owner=user)

    Job.objects.filter(owner=user).update(status=JobStatus.SUCCEEDED)  # finished jobs free the queue
    settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE = 100
    assert _api_submit(client).status_code == 201
    other = Client()
    other.force_login(other_user)
    assert _api_submit(other).status_code == 201  # limits are per user


def test_submissions_per_minute_are_limited(user, settings):
    from webapp.jobs.limits import LimitExceeded, check_job_submission

    settings.TERRAIN_MAX_SUBMISSIONS_PER_MINUTE = 4
    Job.objects.bulk_create([Job(kind="train", owner=user, status=JobStatus.SUCCEEDED) for _ in range(4)])
    with pytest.raises(LimitExceeded) as caught:
        check_job_submission(user=user)
    assert caught.value.field == "jobs" and 1 <= caught.value.retry_after <= 60
    assert "4 jobs per minute" in caught.value.message


def test_repeated_wrong_passwords_lock_the_login(user, settings):
    client = Client()
    answers = [client.post("/accounts/login/", {"username": "ada", "password": f"wrong-{i}"}).status_code for i in range(6)]
    assert answers[:settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert answers[-1] == 429
    right = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-12345"})
    assert right.status_code == 429 and int(right["Retry-After"]) > 0  # even the right password, while locked
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_logs_in(user):
    client = Client()
    for i in range(2):
        client.post("/accounts/login/", {"username": "ada", "password": f"wrong-{i}"})
    assert client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-12345"}).status_code == 302


def test_signups_are_limited_per_address(settings):
    settings.TERRAIN_MAX_SIGNUPS_PER_IP_PER_HOUR = 2
    client = Client()

    def signup(n):
        client.logout()
        return client.post("/accounts/signup/", {"username": f"user{n}", "password1": "a-long-pass-9981", "password2": "a-long-pass-9981"})

    assert [signup(n).status_code for n in range(2)] == [302, 302]
    refused = signup(3)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0 and "new accounts per hour" in refused.content.decode()
    assert get_user_model().objects.filter(username__startswith="user").count() == 2
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert elsewhere.post("/accounts/signup/", {"username": "user9", "password1": "a-long-pass-9981",
                                                "password2": "a-long-pass-9981"}).status_code == 302
