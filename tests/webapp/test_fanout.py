"""The fan-out protocol in-process: stages, claims, takeover of a silent worker, exactly-once writes, cancel.

Tasks are not sent to a broker here: `_send` is replaced by a list that the test
drains as a worker would (tests/integration/test_plane_fanout.py uses real workers).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webapp import kinds_for_tests
from webapp.jobs import fanout
from webapp.jobs.models import JobPart, JobStatus
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch, settings):
    return capture_part_tasks(monkeypatch, settings)


REAL_WAITING_MESSAGES = fanout._waiting_messages


def capture_part_tasks(monkeypatch, settings) -> list:
    """Part tasks go to the returned list instead of the broker; the watch is not scheduled."""
    settings.TERRAIN_FANOUT_STALE_SECONDS = 30
    queue = []
    monkeypatch.setattr(fanout, "_send", lambda *, part_id, **kw: queue.append(part_id))
    monkeypatch.setattr(fanout, "watch_soon", lambda *, job, force=False: None)
    monkeypatch.setattr(fanout, "_waiting_messages", lambda queue: 0)  # no broker: nothing waits in it
    return queue


def start(user, steps=3, fail_at=None):
    job = job_create(kind="test-squares", params={"steps": steps, "fail_at": fail_at}, owner=user, enqueue=False)
    assert run_job(job.pk) == JobStatus.RUNNING  # deferred: the parts finish it
    return job


def drain(queue):
    """Run every queued part task in order, as one worker would; return their outcomes."""
    outcomes = []
    while queue:
        outcomes.append(fanout.part_run(part_id=queue.pop(0)))
    return outcomes


def finish_after_a_dead_worker(job, sent, settings, streamed_before) -> JobPart:
    """Stage 0 done, both stage-1 tasks went to a worker that died in part 2, after it streamed the
    ``points`` event ``streamed_before(part)``; another worker takes over and finishes.  Returns part 2."""
    from webapp.jobs.events import job_event_append

    fanout.part_run(part_id=sent.pop(0))  # stage 0
    sent.clear()
    victim = part(job, 2)
    old = timezone.now() - timedelta(seconds=settings.TERRAIN_FANOUT_STALE_SECONDS + 1)
    JobPart.objects.filter(pk=victim.pk).update(status=JobStatus.RUNNING, worker="gone:1", attempts=1, heartbeat_at=old, dispatched_at=old)
    job_event_append(job=job, kind="points", payload={**streamed_before(victim), "part": 2})
    JobPart.objects.filter(job=job, index=1).update(dispatched_at=old)
    assert fanout.dispatch_ready(job=job) == 2
    drain(sent)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert part(job, 2).attempts == 2
    return victim


def part(job, index):
    return JobPart.objects.get(job=job, index=index)


def test_stages_run_in_order_and_the_finaliser_runs_once(user, sent):
    job = start(user, steps=3)
    assert sent == [part(job, 0).pk]  # stage 1 waits for stage 0
    fanout.part_run(part_id=sent.pop(0))
    assert sorted(sent) == sorted(part(job, k).pk for k in (1, 2, 3))
    drain(sent)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result == {"sum": 0 + 1 + 4 + 9}
    assert [f for f in kinds_for_tests.FINALISED if f[0] == job.slug] == [(job.slug, [0, 1, 2, 3])]
    assert set(job.parts.values_list("status", "attempts")) == {(JobStatus.SUCCEEDED, 1)}
    squares = [e.payload for e in job.events.filter(kind="square")]
    assert sorted(p["part"] for p in squares) == [0, 1, 2, 3] and job.progress == 1.0
    # A duplicate (redelivered) task of a finished part or of the finaliser changes nothing.
    assert fanout.part_run(part_id=part(job, 2).pk) == JobStatus.SUCCEEDED
    assert fanout.part_run(part_id=part(job, 4).pk) == JobStatus.SUCCEEDED
    assert job.events.filter(kind="status", payload__status="succeeded").count() == 1


def test_a_silent_workers_part_is_taken_over_and_its_late_write_loses(user, sent, settings):
    job = start(user, steps=2)
    fanout.part_run(part_id=sent.pop(0))  # stage 0
    assert sorted(sent) == [part(job, 1).pk, part(job, 2).pk]
    sent.remove(part(job, 1).pk)  # its task went to a worker that is about to die
    doomed = part(job, 1)
    # A worker claimed part 1 and then stopped beating (killed).
    assert JobPart.objects.filter(pk=doomed.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, worker="gone:1", attempts=1, heartbeat_at=timezone.now())
    doomed.refresh_from_db()
    dead_ctx = fanout.PartContext(job, doomed)
    assert fanout.part_run(part_id=doomed.pk) == "claimed-elsewhere"  # alive: not taken
    assert fanout.dispatch_ready(job=job) == 0  # both parts were just dispatched
    old = timezone.now() - timedelta(seconds=settings.TERRAIN_FANOUT_STALE_SECONDS + 1)
    JobPart.objects.filter(pk=doomed.pk).update(heartbeat_at=old, dispatched_at=old)
    assert fanout.dispatch_ready(job=job) == 1 and sent[-1] == doomed.pk
    drain(sent)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result == {"sum": 0 + 1 + 4}
    taken = part(job, 1)
    assert taken.attempts == 2 and taken.worker == fanout.worker_name()
    # The first claimant wakes up: it can neither beat nor write its result.
    with pytest.raises(fanout.PartLost):
        dead_ctx.heartbeat(force=True)
    with pytest.raises(fanout.PartLost):
        fanout._land(dead_ctx, JobStatus.SUCCEEDED, result={"square": -1})
    assert part(job, 1).result == {"square": 1}


def test_declaring_parts_twice_keeps_one_row_each(user, sent):
    job = start(user, steps=2)
    run_job(job.pk)  # no-op: the job is running
    fanout.fanout_start(fanout.PartContext(job, part(job, 0)), [fanout.Part(index=k, payload={"x": k}) for k in range(3)])
    assert job.parts.count() == 4 and job.parts.filter(finaliser=True).count() == 1


def test_a_failed_part_fails_the_job(user, sent):
    job = start(user, steps=3, fail_at=2)
    drain(sent)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "part 2 failed: ValueError: boom at part 2" in job.error
    assert part(job, 2).status == JobStatus.FAILED
    assert part(job, 4).status == JobStatus.CANCELLED  # the finaliser never ran


def test_cancel_stops_the_parts_and_the_finaliser_closes_the_job(user, sent):
    job = start(user, steps=3)
    fanout.part_run(part_id=sent.pop(0))  # stage 0
    job.cancel_requested = True
    job.save(update_fields=["cancel_requested"])
    drain(sent)
    fanout.dispatch_ready(job=job)
    drain(sent)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    statuses = dict(job.parts.values_list("index", "status"))
    assert statuses[0] == JobStatus.SUCCEEDED and {statuses[k] for k in (1, 2, 3)} == {JobStatus.CANCELLED}
    assert kinds_for_tests.FINALISED[-1] == (job.slug, [0, 1, 2, 3])


def test_the_watch_and_other_parts_heartbeats_redispatch_a_silent_part(user, sent, settings, monkeypatch):
    armed = []
    monkeypatch.setattr(fanout, "watch_soon", lambda *, job, force=False: armed.append(job.pk))
    job = start(user, steps=2)
    fanout.part_run(part_id=sent.pop(0))
    sent.clear()
    old = timezone.now() - timedelta(seconds=settings.TERRAIN_FANOUT_STALE_SECONDS + 1)
    for index in (1, 2):
        JobPart.objects.filter(job=job, index=index).update(status=JobStatus.RUNNING, worker=f"w{index}:1", attempts=1,
                                                            heartbeat_at=timezone.now(), dispatched_at=old)
    alive = fanout.PartContext(job, part(job, 2))
    JobPart.objects.filter(job=job, index=1).update(heartbeat_at=old)  # part 1's worker died
    alive._last_look -= 60  # as if part 2 had been running a while
    alive.heartbeat(force=True)
    assert sent == [part(job, 1).pk]
    sent.clear()
    JobPart.objects.filter(job=job, index=1).update(dispatched_at=old)  # its new task was lost too
    armed.clear()
    fanout.fanout_watch(job_id=job.pk)
    assert sent == [part(job, 1).pk] and armed == [job.pk]  # re-sent, and the watch re-armed
    assert part(job, 2).heartbeat_at > old  # the live part was left alone


def test_a_queued_part_is_sent_again_only_when_its_queue_is_empty(user, sent, settings, monkeypatch):
    # parts that wait their turn behind a long queue were re-sent every stale period, growing the queue
    # without bound on a big sweep; a message can only be lost (held by a dead worker) when none waits
    import uuid

    from webapp.jobs import workers

    monkeypatch.setattr(fanout, "_waiting_messages", REAL_WAITING_MESSAGES)  # the real broker's queue (Redis)
    job = start(user, steps=2)
    queue = f"t-{uuid.uuid4().hex[:12]}"  # a queue no worker reads
    job.queue = queue
    job.save(update_fields=["queue"])
    fanout.part_run(part_id=sent.pop(0))  # stage 0
    sent.clear()
    old = timezone.now() - timedelta(seconds=settings.TERRAIN_FANOUT_STALE_SECONDS + 1)
    JobPart.objects.filter(job=job, index__in=(1, 2)).update(dispatched_at=old)
    client = workers._redis()
    client.rpush(queue, "another job's task")
    try:
        assert fanout.dispatch_ready(job=job) == 0 and sent == []  # their messages may be waiting: not re-sent
    finally:
        client.delete(queue)
    assert fanout.dispatch_ready(job=job) == 2 and sorted(sent) == [part(job, 1).pk, part(job, 2).pk]
    assert fanout.dispatch_ready(job=job) == 0  # once per stale period
