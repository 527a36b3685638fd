"""The job consumer over WebsocketCommunicator, on the real Redis channel layer."""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from webapp.catalog.visibility import Visibility
from tests.webapp import kinds_for_tests  # noqa: F401  (registers test-steps)
from webapp.jobs.events import job_event_append
from webapp.jobs.models import Job
from webapp.jobs.routing import websocket_urlpatterns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def communicator(slug, user, after=None):
    path = f"/ws/jobs/{slug}/" + (f"?after={after}" if after is not None else "")
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["user"] = user
    return comm


@database_sync_to_async
def new_job(owner, visibility, events=0):
    job = Job.objects.create(kind="test-steps", owner=owner, visibility=visibility)
    for i in range(events):
        job_event_append(job=job, kind="tick", payload={"step": i})
    return job


async def test_snapshot_then_live_events(user):
    job = await new_job(user, Visibility.PRIVATE, events=3)
    comm = communicator(job.slug, user, after=1)
    connected, _ = await comm.connect()
    assert connected
    snapshot = await comm.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    assert [e["seq"] for e in snapshot["events"]] == [2, 3]
    await sync_to_async(job_event_append)(job=job, kind="tick", payload={"step": 99}, progress=0.5)
    event = await comm.receive_json_from(timeout=5)
    assert event == {"type": "event", "seq": 4, "kind": "tick", "payload": {"step": 99}, "status": "queued", "progress": 0.5}
    await comm.disconnect()


async def test_resync_returns_missed_events(user):
    job = await new_job(user, Visibility.PUBLIC, events=4)
    comm = communicator(job.slug, AnonymousUser())
    await comm.connect()
    await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "resync", "after": 2})
    again = await comm.receive_json_from(timeout=5)
    assert [e["seq"] for e in again["events"]] == [3, 4]
    await comm.disconnect()


@pytest.mark.parametrize("viewer", ["anonymous", "other"])
async def test_private_job_is_refused(user, other_user, viewer):
    job = await new_job(user, Visibility.PRIVATE, events=1)
    comm = communicator(job.slug, AnonymousUser() if viewer == "anonymous" else other_user)
    connected, _ = await comm.connect()
    assert not connected


async def test_unknown_job_is_refused(user):
    comm = communicator("does-not-exist", user)
    connected, _ = await comm.connect()
    assert not connected


async def test_final_status_reaches_clients_only_once_committed(user):
    """A client told "cancelled" must read "cancelled" from the database, never the old status."""
    from asgiref.sync import async_to_sync
    from django.db import transaction

    from webapp.jobs.services import job_finish

    job = await new_job(user, Visibility.PUBLIC)
    comm = communicator(job.slug, AnonymousUser())
    await comm.connect()
    await comm.receive_json_from(timeout=5)

    def finish_while_a_slow_writer_holds_the_transaction():
        with transaction.atomic():
            job_finish(job=job, status="cancelled")
            seen_before_commit = async_to_sync(comm.receive_nothing)(timeout=0.5)
        return seen_before_commit

    assert await sync_to_async(finish_while_a_slow_writer_holds_the_transaction, thread_sensitive=False)()
    event = await comm.receive_json_from(timeout=5)
    assert event["payload"]["status"] == "cancelled"
    assert (await database_sync_to_async(Job.objects.get)(pk=job.pk)).status == "cancelled"
    await comm.disconnect()


async def test_an_idle_socket_stays_open_past_the_layers_blocking_read(user):
    """channels_redis waits 5 s per blocking read; with redis-py's 5 s socket timeout an idle
    socket (a finished job left open in a tab) died with 1011. Idle for three such reads."""
    job = await new_job(user, Visibility.PUBLIC, events=2)
    comm = communicator(job.slug, AnonymousUser())
    await comm.connect()
    await comm.receive_json_from(timeout=5)
    assert await comm.receive_nothing(timeout=16, interval=0.5)
    await comm.send_json_to({"type": "resync", "after": 1})
    again = await comm.receive_json_from(timeout=5)
    assert [e["seq"] for e in again["events"]] == [2]
    await comm.disconnect()


@pytest.mark.parametrize("frame", ["not json", "x" * 100_000, '{"a": ' + "9" * 5000 + "}", "[" * 100_000, b"\x00\x01",
                                   '{"type": "resync", "after": 1e999}', '{"type": "resync", "after": ' + "9" * 4000 + "}"])
async def test_bad_frames_get_a_short_answer_and_the_connection_stays(user, frame):
    job = await new_job(user, Visibility.PUBLIC, events=2)
    comm = communicator(job.slug, AnonymousUser())
    await comm.connect()
    await comm.receive_json_from(timeout=5)
    if isinstance(frame, bytes):
        await comm.send_to(bytes_data=frame)
    else:
        await comm.send_to(text_data=frame)
    answer = await comm.receive_json_from(timeout=5)  # an exception here would have closed the socket with 1011
    if isinstance(frame, str) and "resync" in frame:
        assert answer["type"] == "snapshot"  # a number that is no seq is clamped or ignored, not an exception
    else:
        assert answer["type"] == "error" and len(answer["error"]) <= 200
    await comm.send_json_to({"type": "resync", "after": 0})
    assert [e["seq"] for e in (await comm.receive_json_from(timeout=5))["events"]] == [1, 2]
    await comm.disconnect()
