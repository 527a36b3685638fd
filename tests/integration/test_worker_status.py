"""The staff status page lists live workers, what each is running and the queues' backlog."""

import time

import pytest
from django.contrib.auth import get_user_model

from tests.integration.test_training_pipeline import _submit
from webapp.jobs.services import job_cancel

pytestmark = pytest.mark.integration


def _wait(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_status_page_shows_the_live_worker_and_its_running_job(live_stack, client, staff_user, user):
    worker = live_stack["worker"]
    job = _submit(user, dataset="digits", hidden="64,64", epochs=200, batch_size=8, snapshots=2, track_sharpness=False)
    assert _wait(lambda: job.__class__.objects.get(pk=job.pk).status == "running"), worker.log()

    client.force_login(user)
    assert client.get("/status/").status_code == 302  # staff only: others are sent to the admin login
    client.force_login(staff_user)
    assert _wait(lambda: f"terrain.run_job {job.pk}" in client.get("/status/").content.decode(), 30)
    page = client.get("/status/").content.decode()
    assert f'data-worker="{worker.name}@' in page and "cpu, gpu" in page
    assert job.get_absolute_url() in page  # in the running-jobs table

    job_cancel(job=job, user=user)
    assert _wait(lambda: f"terrain.run_job {job.pk}" not in client.get("/status/").content.decode(), 60), worker.log()
