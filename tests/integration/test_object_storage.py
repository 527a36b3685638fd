"""Files in an S3-compatible object store, workers that share nothing else with the web server.

A real moto S3 server, a real Celery worker process whose only shared state is the
database, Redis and the bucket: its media folder does not exist, its file cache
starts empty, and (for "another machine") it runs from another working directory.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from tests import stack
from tests.objectstore import ObjectStore
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.services import job_create, job_enqueue, job_params_validate

pytestmark = pytest.mark.integration

QUEUE = "objectstore"  # this module's own queue, so the session's local-disk worker never takes its jobs


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    server = ObjectStore().start(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3_settings(store, tmp_path):
    with override_settings(STORAGES=store.storages_setting(), MEDIA_ROOT=tmp_path / "web-media-unused"):
        yield store


def remote_worker(store, home: Path, process_logs, name, *, elsewhere=False):
    """A worker as on another host: no media folder, an empty cache, optionally another working directory."""
    cwd = home / f"{name}-home"
    cwd.mkdir()
    env = {**store.env(), "TERRAIN_MEDIA_ROOT": "/nonexistent/terrain-media",
           "TERRAIN_FILE_CACHE": str(home / f"{name}-cache"), "TERRAIN_VAR_DIR": str(cwd / "var")}
    worker = stack.Worker(name=name, queues=QUEUE, env=env, cwd=cwd if elsewhere else None)
    return worker.start(process_logs)


@pytest.fixture(scope="module")
def far_worker(store, django_db_setup, django_db_blocker, tmp_path_factory, process_logs):
    """One worker "on another machine" (another working directory, its own empty cache) for the module."""
    home = tmp_path_factory.mktemp("far")
    with django_db_blocker.unblock():
        worker = remote_worker(store, home, process_logs, "far", elsewhere=True)
    worker.cache = home / "far-cache"
    yield worker
    worker.stop()


def uploaded_checkpoint(owner, tmp_path):
    """A checkpoint through the upload service, as the form and the API store one."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from webapp.catalog.uploads import checkpoint_upload

    trained = trained_checkpoint(owner, tmp_path, with_trajectory=False)  # only to get real trained bytes
    payload = trained.file.open("rb").read()
    return checkpoint_upload(owner=owner, uploaded=SimpleUploadedFile("mine.safetensors", payload))


def queue_job(owner, kind, **data) -> Job:
    validated = job_params_validate(kind=kind, data={"visibility": Visibility.PRIVATE, **data}, user=owner)
    job = job_create(kind=kind, params=validated.params, owner=owner, visibility=Visibility.PRIVATE, enqueue=False)
    Job.objects.filter(pk=job.pk).update(queue=QUEUE)
    job.refresh_from_db()
    job_enqueue(job=job)
    return job


def wait_done(job: Job, worker: stack.Worker, timeout: float = 180) -> Job:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert job.status == "succeeded", f"{job.status}: {job.error}\n{worker.log()}"
    return job


def test_landscape_on_an_uploaded_checkpoint_runs_from_the_bucket(transactional_db, s3_settings, far_worker, tmp_path, client):
    store = s3_settings
    owner = get_user_model().objects.create_user("remote-owner", password="pw-remote-1")
    checkpoint = uploaded_checkpoint(owner, tmp_path)
    keys = store.keys()
    assert checkpoint.file.name in keys
    assert not (tmp_path / "web-media-unused").exists()

    plane = wait_done(queue_job(owner, "landscape", checkpoint=checkpoint.slug, resolution=9, eval_size=200), far_worker)
    cached = far_worker.cache / checkpoint.sha256[:2] / f"{checkpoint.sha256}.safetensors"
    first_copy = cached.stat().st_ino
    again = wait_done(queue_job(owner, "landscape", checkpoint=checkpoint.slug, resolution=5, eval_size=200), far_worker)
    assert len(plane.result["loss"]) == 9 and len(again.result["loss"]) == 5
    # The worker streamed the checkpoint once into its cache, named by its content hash, and reused it.
    assert cached.stat().st_ino == first_copy and cached.read_bytes() == checkpoint.file.open("rb").read()

    # Private: no unsigned URL reaches the object; other users get 404; the owner a short-lived signed URL.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{store.endpoint}/{store.bucket}/{checkpoint.file.name}")
    assert refused.value.code == 403
    client.force_login(get_user_model().objects.create_user("stranger", password="pw-stranger-1"))
    assert client.get(f"/c/{checkpoint.slug}/download").status_code == 404
    client.force_login(owner)
    response = client.get(f"/c/{checkpoint.slug}/download")
    assert response.status_code == 302 and "X-Amz-Signature=" in response["Location"] and "X-Amz-Expires=300" in response["Location"]
    with urllib.request.urlopen(response["Location"]) as signed:
        assert signed.read() == store.client().get_object(Bucket=store.bucket, Key=checkpoint.file.name)["Body"].read()


def test_a_worker_on_another_machine_with_an_empty_cache_completes_a_job(transactional_db, s3_settings, far_worker, tmp_path):
    owner = get_user_model().objects.create_user("far-owner", password="pw-far-1")
    checkpoint = trained_checkpoint(owner, tmp_path, visibility=Visibility.PRIVATE)
    assert not list(far_worker.cache.glob(f"*/{checkpoint.sha256}*"))  # nothing of this model on that machine yet
    job = wait_done(queue_job(owner, "landscape", checkpoint=checkpoint.slug, resolution=5, eval_size=200, axes="pca"), far_worker)
    assert len(job.result["loss"]) == 5 and job.result["trajectory"]
    assert list(far_worker.cache.glob(f"*/{checkpoint.sha256}*"))
    assert not Path("/nonexistent/terrain-media").exists()


SWEEP = {
    "name": "object-store sweep",
    "task": {"name": "modular-addition-mlp", "p": 7},
    "x": {"name": "weight_decay", "values": [0.0, 1.0]},
    "y": {"name": "lr", "values": [0.01]},
    "seeds": 2,
    "budget": 60,
    "fixed": {"width": 8, "data_fraction": 0.5, "optimizer": "adamw"},
    "metrics": ["mode_connectivity"],
    "eval_points": 10,
}


def test_a_sweep_fans_out_to_workers_that_share_only_the_bucket(transactional_db, s3_settings, far_worker, tmp_path, process_logs):
    from webapp.phases.models import SweepCell, SweepRun

    store = s3_settings
    owner = get_user_model().objects.create_user("sweeper", password="pw-sweeper-1")
    near = remote_worker(store, tmp_path, process_logs, "near")
    try:
        job = wait_done(queue_job(owner, "sweep", spec=SWEEP), near, timeout=240)
    finally:
        near.stop()
    runs = list(SweepRun.objects.filter(job=job))
    assert len(runs) == 4 and all(r.status == "succeeded" for r in runs)
    assert SweepCell.objects.filter(job=job).count() == 2
    keys = set(store.keys())
    assert {r.state_file.name for r in runs} <= keys  # every run's weights landed in the bucket
