"""One plane over two real workers; one is SIGKILLed mid-plane.  The plane still completes, a websocket
client sees every point exactly once, and the surface equals a single-worker run number for number."""

import asyncio
import threading

import pytest
from django.contrib.auth import get_user_model

from tests import stack
from tests.integration.test_training_pipeline import _collect
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobPart
from webapp.jobs.services import job_create, job_params_validate

pytestmark = pytest.mark.integration
N = 25


def _plane_job(owner, checkpoint, parts):
    params = job_params_validate(kind="landscape", data={"checkpoint": checkpoint.slug, "resolution": N, "eval_size": 1000},
                                 user=owner).params
    return job_create(kind="landscape", params={**params, "parts": parts}, owner=owner, visibility=Visibility.PUBLIC)


def test_plane_survives_a_killed_worker(transactional_db, monkeypatch, process_logs, live_web, tmp_path):
    monkeypatch.setenv("TERRAIN_FANOUT_STALE_SECONDS", "3")  # the workers' takeover timeout
    owner = get_user_model().objects.create_user("cartographer", password="pw-cartographer-1")
    checkpoint = trained_checkpoint(owner, tmp_path, spec={"kind": "mlp", "in": 64, "hidden": [128, 128], "out": 10})
    doomed = stack.Worker(name="doomed-plane").start(process_logs)
    survivor = stack.Worker(name="survivor-plane").start(process_logs)
    try:
        job = _plane_job(owner, checkpoint, parts=6)
        events = []
        client = threading.Thread(target=lambda: asyncio.run(_collect(f"{live_web.ws_url}/ws/jobs/{job.slug}/", events, timeout=300)))
        client.start()

        doomed_pids = stack.pool_pids(doomed)

        def doomed_block():
            return JobPart.objects.filter(job=job, status="running", index__gt=0, finaliser=False,
                                          worker__regex=rf":({'|'.join(doomed_pids)})$").first()

        stack.wait_until(lambda: doomed_block() is not None, 180, "the doomed worker to be computing a block")
        stack.kill_hard(doomed)
        victim = JobPart.objects.get(pk=doomed_block().pk)  # still "running": it was killed mid-block

        stack.wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, 240, "the plane to finish")
        client.join(timeout=60)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error + survivor.log()
        victim.refresh_from_db()
        assert victim.status == "succeeded" and victim.attempts >= 2
        assert victim.worker.split(":")[-1] not in doomed_pids  # redone by the survivor

        streamed = [(p["i"], p["j"]) for e in events if e["kind"] == "points" for p in e["payload"]["points"]]
        assert sorted(streamed) == [(i, j) for i in range(N) for j in range(N)]  # every point exactly once
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

        single = _plane_job(owner, checkpoint, parts=1)  # the reference: one worker, the classic path
        stack.wait_until(lambda: Job.objects.get(pk=single.pk).is_finished, 240, "the single-worker plane")
        single.refresh_from_db()
        assert single.status == "succeeded" and not single.parts.exists()
        for key in ("a", "b", "loss", "accuracy", "directions", "centre_loss", "centre_accuracy"):
            assert job.result[key] == single.result[key], key
        loss = {(p["i"], p["j"]): p["loss"] for e in events if e["kind"] == "points" for p in e["payload"]["points"]}
        assert all(loss[i, j] == single.result["loss"][i][j] for i in range(N) for j in range(N))
    finally:
        doomed.stop(kill=True)
        survivor.stop()
