"""A real prefork Celery worker computes a CNN plane with its points split between two threads
(the default once it is fork-safe) and finishes; every point equals the serial plane's."""

import time

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from tests import stack
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.integration

CNN = {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [4, 6], "out": 10, "batchnorm": True}


def test_forked_worker_runs_a_point_parallel_plane(transactional_db, process_logs, monkeypatch):
    monkeypatch.setenv("TERRAIN_WORKER_THREADS", "2")
    worker = stack.Worker(name="parallel", concurrency=1).start(process_logs)
    try:
        owner = get_user_model().objects.create_user("parallel", password="pw-parallel-1")
        checkpoint = trained_checkpoint(owner, process_logs, spec=CNN, with_trajectory=False)
        data = {"checkpoint": checkpoint.slug, "resolution": 9, "eval_size": 300, "visibility": Visibility.PUBLIC}
        job = job_submit(validated=job_params_validate(kind="landscape", data=data, user=owner), owner=owner)
        deadline = time.monotonic() + 180
        while not Job.objects.get(pk=job.pk).is_finished:
            assert time.monotonic() < deadline, "the plane did not finish (hung worker?)\n" + worker.log()
            time.sleep(0.3)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error + worker.log()
    finally:
        worker.stop()
    result = job.result
    assert result["point_threads"] == 2 and result["evaluator"] == "PointEvaluator"
    assert np.array(result["computed"]).all()

    from analysis import checkpoints, landscape
    from webapp.landscapes.evaluation_data import evaluation_data

    p = job.params
    X, y = evaluation_data(dataset=p["dataset"], split=p["split"], size=p["eval_size"], owner_id=owner.pk)
    serial = landscape.plane(checkpoints.load(checkpoint.file.path).model, (X, y), resolution=9, seed=job.params["seed"],
                             span=job.params["span"] or None)
    np.testing.assert_allclose(np.array(result["loss"], dtype=float), serial.loss, rtol=1e-5)
