"""A real Celery worker runs a real training job; a real websocket client watches it
through daphne, with a forced reconnect in the middle, and misses nothing."""

import asyncio
import json

import pytest
import websockets
from django.contrib.auth import get_user_model

from webapp.catalog.models import Checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.integration

FINAL = {"succeeded", "failed", "cancelled"}


async def _collect(url, events, *, stop_after=None, timeout=120):
    """Read snapshot + events into `events` (dropping seqs already seen) until final or `stop_after` new ones."""
    seen_before = len(events)
    async with websockets.connect(url, origin="http://127.0.0.1") as socket:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await socket.recv())
                batch = message["events"] if message["type"] == "snapshot" else [message]
                for event in batch:
                    if not events or event["seq"] > events[-1]["seq"]:
                        events.append({key: event[key] for key in ("seq", "kind", "payload")})
                    if event["kind"] == "status" and event["payload"]["status"] in FINAL:
                        return "final"
                if stop_after is not None and len(events) - seen_before >= stop_after:
                    return "dropped"  # leaving the block closes the socket mid-stream


def _submit(owner, **params):
    validated = job_params_validate(kind="train", data={"visibility": Visibility.PUBLIC, **params}, user=owner)
    return job_submit(validated=validated, owner=owner)


def test_training_job_streams_every_event_in_order_across_a_reconnect(live_stack):
    owner = get_user_model().objects.create_user("trainer", password="pw-trainer-1")
    job = _submit(owner, dataset="digits", hidden="32", epochs=6, batch_size=32, snapshots=5)
    base = f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/"

    events = []
    first = asyncio.run(_collect(base, events, stop_after=8))
    assert first == "dropped", "the job finished before we could force a reconnect; make it longer"
    asyncio.run(asyncio.sleep(0.5))  # events keep coming while we are away
    assert asyncio.run(_collect(f"{base}?after={events[-1]['seq']}", events)) == "final"

    job.refresh_from_db()
    assert job.status == "succeeded", job.error + live_stack["worker"].log()
    stored = [{"seq": e.seq, "kind": e.kind, "payload": e.payload} for e in JobEvent.objects.filter(job=job).order_by("seq")]
    assert [e["seq"] for e in events] == list(range(1, job.last_seq + 1))
    assert events == stored  # every event, in order, exactly once, equal to the database
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "status" and kinds[1] == "started" and kinds[-2:] == ["checkpoint", "status"]
    metrics = [e["payload"] for e in events if e["kind"] == "metrics"]
    assert [m["step"] for m in metrics] == sorted(m["step"] for m in metrics) and len(metrics) > 10

    # The saved checkpoint is real: loading it reproduces the reported test accuracy.
    from analysis import checkpoints, data
    from analysis.metrics import evaluate

    checkpoint = Checkpoint.objects.get(slug=job.result["checkpoint"])
    model, spec, meta = checkpoints.load(checkpoint.file.path)
    X_test, y_test = data.load("digits", "test")
    _, accuracy = evaluate(model, X_test, y_test)
    assert accuracy == pytest.approx(metrics[-1]["test_accuracy"], abs=1e-6)
    assert checkpoints.load_trajectory(checkpoint.trajectory_file.path).steps[-1] == metrics[-1]["step"]
    assert job.device == "cpu"


def test_private_job_refused_over_real_websocket(live_stack):
    owner = get_user_model().objects.create_user("secretive", password="pw-secret-1")
    job = Job.objects.create(kind="train", owner=owner, visibility=Visibility.PRIVATE)

    async def attempt():
        async with websockets.connect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/", origin="http://127.0.0.1"):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        asyncio.run(attempt())
    assert caught.value.response.status_code == 403


def test_cancel_a_running_job(live_stack):
    owner = get_user_model().objects.create_user("impatient", password="pw-imp-1")
    job = _submit(owner, dataset="digits", hidden="64,64", epochs=200, batch_size=16)
    events = []
    asyncio.run(_collect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/", events, stop_after=5))
    from webapp.jobs.services import job_cancel

    job_cancel(job=job, user=owner)
    assert asyncio.run(_collect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/?after={events[-1]['seq']}", events)) == "final"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.progress < 1
    assert not Checkpoint.objects.filter(created_by_job=job).exists()
