"""A real worker computes a small plane and a Hessian; what the websocket streams rebuilds the result exactly."""

import asyncio

import pytest
from django.contrib.auth import get_user_model

from tests.integration.test_training_pipeline import _collect
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.integration


def submit(owner, kind, **data):
    return job_submit(validated=job_params_validate(kind=kind, data={"visibility": Visibility.PUBLIC, **data}, user=owner), owner=owner)


def stream(live_stack, job):
    events = []
    assert asyncio.run(_collect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/", events)) == "final"
    job.refresh_from_db()
    assert job.status == "succeeded", job.error + live_stack["worker"].log()
    return events


def test_plane_stream_rebuilds_the_surface(live_stack, tmp_path):
    owner = get_user_model().objects.create_user("surveyor", password="pw-surveyor-1")
    checkpoint = trained_checkpoint(owner, tmp_path)
    job = submit(owner, "landscape", checkpoint=checkpoint.slug, resolution=17, eval_size=400)
    events = stream(live_stack, job)
    start = next(e["payload"] for e in events if e["kind"] == "start")
    loss = [[None] * len(start["b"]) for _ in start["a"]]
    accuracy = [[None] * len(start["b"]) for _ in start["a"]]
    for event in events:
        if event["kind"] == "points":
            for p in event["payload"]["points"]:
                loss[p["i"]][p["j"]], accuracy[p["i"]][p["j"]] = p["loss"], p["accuracy"]
    assert start["a"] == job.result["a"] and start["b"] == job.result["b"]
    assert loss == job.result["loss"] and accuracy == job.result["accuracy"]
    final = events[-1]["payload"]
    assert final["status"] == "succeeded" and final["result"]["loss"] == loss


def test_hessian_stream_rebuilds_the_spectrum(live_stack, tmp_path):
    owner = get_user_model().objects.create_user("spectator", password="pw-spectator-1")
    checkpoint = trained_checkpoint(owner, tmp_path)
    job = submit(owner, "hessian", checkpoint=checkpoint.slug, eval_size=300, top_k=4, trace_matvecs=30, density_probes=2, density_iters=20)
    events = {e["kind"]: e["payload"] for e in stream(live_stack, job)}
    assert events["eigenvalues"] == job.result["eigenvalues"]
    assert events["trace"] == job.result["trace"]
    assert events["density"] == job.result["density"]
    assert len(events["eigenvalues"]["values"]) == 4
